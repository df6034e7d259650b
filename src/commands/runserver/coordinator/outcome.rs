//! What the end of a cycle means: switch the proxy to the new app, report
//! why not, or, for an app on a fixed address, run the second phase (stop
//! the old app, start the new one) and learn where the app listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::super::addr::display_addr;
use super::super::build::Failure;
use super::super::child::Exit;
use super::super::cycle::{Cycle, CycleEnd, Retiree};
use super::super::livereload::Event;
use super::super::ready::{NotReady, Ready, Via};
use super::super::state::{Backend, Problem};
use super::super::watch;
use super::{cycle_over, secs, Coordinator, Current};
use crate::ui::Tone;

impl Coordinator {
    pub(super) fn print_tail(&self, exit: &Exit) {
        if exit.output_tail.is_empty() {
            return;
        }
        self.ui
            .info(self.ui.paint("  last lines of its output:", Tone::Dim));
        for line in exit.output_tail.iter().rev().take(10).rev() {
            self.ui.info(format!(
                "  {}",
                self.ui.paint(console::strip_ansi_codes(line), Tone::Dim)
            ));
        }
    }

    pub(super) fn on_cycle_end(&mut self, end: CycleEnd) {
        let serving = self.current.is_some();
        let replaced = std::mem::take(&mut self.replacing);
        match end {
            CycleEnd::Cancelled => {}
            CycleEnd::Built { exe, elapsed } => {
                self.note_build_inputs(&exe);
                self.start_replacement(exe, elapsed);
            }
            CycleEnd::Error(err) => {
                self.state.send_modify(|s| {
                    s.busy = false;
                    s.problem = Some(Problem::NotReady(Arc::new(format!("{err:#}"))));
                });
                self.emit_error(&err);
                self.ui.error(&err);
            }
            CycleEnd::Failed(failure) => {
                // Its fix may add an input the last good build did not
                // read: until a build succeeds, every change builds.
                let _ = self.watch.send(watch::Command::BuildInputs(Vec::new()));
                let errors = failure.errors();
                let elapsed = failure.elapsed;
                let fields = failure_fields(&failure, serving);
                let what = if serving {
                    "still serving the previous build"
                } else {
                    "no build to serve yet; fix the errors and save"
                };
                // Publish first, then announce: whoever reads the line
                // finds the proxy already in the state it describes.
                self.publish_problem(Problem::BuildFailed(Arc::new(failure)), cycle_over);
                self.config.events.emit("build-failed", fields);
                self.ui.info(format!(
                    "{} after {} ({} error{}) — {what}",
                    self.ui.paint("Build failed", Tone::Bad),
                    secs(elapsed),
                    errors,
                    if errors == 1 { "" } else { "s" },
                ));
            }
            CycleEnd::Unchanged { exe, elapsed } => {
                self.note_build_inputs(&exe);
                self.state.send_modify(|s| {
                    s.busy = false;
                    if matches!(s.problem, Some(Problem::BuildFailed(_))) {
                        s.problem = None;
                    }
                });
                // What changed may be read by the app as it runs (its
                // templates, in debug builds): open tabs reload to show it.
                self.hub.send(if self.current.is_some() {
                    Event::Reload
                } else {
                    Event::Clear
                });
                self.config.events.emit("unchanged", json!(null));
                self.ui.info(format!(
                    "{} in {} · executable unchanged, no restart",
                    self.ui.paint("Built", Tone::Good),
                    secs(elapsed)
                ));
            }
            CycleEnd::RolledBack {
                exe,
                elapsed,
                why,
                child,
                ready,
            } => {
                self.note_build_inputs(&exe);
                let reason = not_ready_reason(&why, self.config.addr);
                let backend = Backend::new(&ready.addr);
                let exited = Box::pin(child.exited());
                self.current = Some(Current {
                    child,
                    backend: backend.clone(),
                    exited,
                });
                let problem = match why {
                    NotReady::Exited(exit) => Problem::Crashed(Arc::new(exit)),
                    NotReady::TimedOut { .. } => Problem::NotReady(Arc::new(reason.clone())),
                };
                self.publish_problem(problem.clone(), |s| {
                    s.backend = Some(backend);
                    s.busy = false;
                });
                self.config.events.emit(
                    "rolled-back",
                    json!({ "reason": reason, "pid": self.current.as_ref().map(|c| c.child.pid()) }),
                );
                self.ui.info(format!(
                    "{} in {}, but the new app never became ready: {reason} — \
                     still serving the previous build (started again from a saved copy)",
                    self.ui.paint("Built", Tone::Warn),
                    secs(elapsed)
                ));
                if let Problem::Crashed(exit) = &problem {
                    self.print_tail(exit);
                }
            }
            CycleEnd::NotReady { exe, elapsed, why } => {
                self.note_build_inputs(&exe);
                if let NotReady::Exited(exit) = &why {
                    if serving && !self.fixed && address_in_use(exit) {
                        // It wants the address the old app holds: stop
                        // that one first, now and from now on.
                        self.fixed = true;
                        self.note_once(
                            "the new build could not listen: its address is in use by the old one. \
                             From now on the old app stops before the new one starts, and requests \
                             wait meanwhile. Read PORT or LISTEN_FDS for swaps without a pause"
                                .to_owned(),
                        );
                        self.start_replacement(exe, elapsed);
                        return;
                    }
                }
                let reason = not_ready_reason(&why, self.config.addr);
                let what = if serving {
                    "still serving the previous build"
                } else {
                    "nothing to serve; fix it and save"
                };
                let line = format!(
                    "{} in {}, but the new app never became ready: {reason} — {what}",
                    self.ui.paint("Built", Tone::Warn),
                    secs(elapsed)
                );
                let mut fields = json!({ "reason": reason, "serving": serving });
                let tail = match why {
                    NotReady::Exited(exit) if address_in_use(&exit) => {
                        // The page says what to do, not only how it ended.
                        let exit = Arc::new(exit);
                        fields["exit"] = exit_fields(&exit);
                        self.publish_problem(Problem::NotReady(Arc::new(reason)), cycle_over);
                        Some(exit)
                    }
                    NotReady::Exited(exit) => {
                        let exit = Arc::new(exit);
                        self.publish_problem(Problem::Crashed(exit.clone()), cycle_over);
                        fields["exit"] = exit_fields(&exit);
                        Some(exit)
                    }
                    NotReady::TimedOut { .. } => {
                        self.publish_problem(Problem::NotReady(Arc::new(reason)), cycle_over);
                        None
                    }
                };
                self.config.events.emit("not-ready", fields);
                self.ui.info(line);
                if let Some(exit) = tail {
                    self.print_tail(&exit);
                }
            }
            CycleEnd::Started {
                exe,
                child,
                elapsed,
                ready_in,
                ready,
            } => {
                self.note_build_inputs(&exe);
                self.on_ready(&ready);
                let backend = Backend::new(&ready.addr);
                let exited = Box::pin(child.exited());
                let old = self.current.replace(Current {
                    child,
                    backend: backend.clone(),
                    exited,
                });
                // The switch: every request from now on goes to the new
                // child, whose pages carry the new generation; then every
                // open tab shows the new build.
                let swapped = json!({
                    "pid": self.current.as_ref().map(|c| c.child.pid()),
                    "addr": ready.addr.to_string(),
                    "build_ms": elapsed.as_millis(),
                    "ready_ms": ready_in.as_millis(),
                    "restarted": old.is_some() || replaced,
                });
                let (state, events) = (&self.state, &self.config.events);
                self.hub.reload_after(|| {
                    state.send_modify(|s| {
                        s.backend = Some(backend);
                        s.busy = false;
                        s.problem = None;
                    });
                    events.emit("swapped", swapped);
                });
                let verb = if old.is_some() || replaced {
                    "restarted"
                } else {
                    "started"
                };
                let held = if replaced {
                    " (requests waited while the old app stopped)"
                } else {
                    ""
                };
                self.ui.info(format!(
                    "{} in {} · {verb} in {} ms{held}",
                    self.ui.paint("Built", Tone::Good),
                    secs(elapsed),
                    ready_in.as_millis()
                ));
                if let Some(old) = old {
                    self.retire(old);
                }
            }
        }
    }

    /// Phase two for an app on a fixed address: requests wait in the proxy
    /// while the old app stops and the new one starts.
    fn start_replacement(&mut self, exe: PathBuf, elapsed: Duration) {
        let mut job = self.job();
        job.prebuilt = Some((exe, elapsed));
        let keep_at = self
            .config
            .plan
            .watch_set
            .target_dir
            .join("manage")
            .join("previous")
            .join(&self.config.plan.spec.bin);
        job.replace = self.current.take().map(|old| Retiree {
            child: old.child,
            backend: old.backend,
            grace: self.config.grace,
            keep_at,
        });
        self.state.send_modify(|s| {
            s.backend = None;
            s.busy = true;
        });
        self.replacing = true;
        self.cycle = Some(Cycle::spawn(job));
    }

    /// Learns from where a new app answered.
    fn on_ready(&mut self, ready: &Ready) {
        match ready.via {
            Via::Passed | Via::Port => self.fixed = false,
            Via::Discovered | Via::Configured => {
                if ready.via == Via::Discovered {
                    self.note_once(format!(
                        "the app listens on {}, not on $PORT; proxying there",
                        ready.local
                    ));
                }
                if let Some(local) = ready.local.tcp().filter(|a| a.ip().is_unspecified()) {
                    self.note_once(format!(
                        "the app listens on all interfaces ({}): other machines reach it \
                         directly, past manage's host check. Bind 127.0.0.1 (or read HOST) \
                         to keep it to this machine",
                        display_addr(local)
                    ));
                }
                self.fixed = true;
                self.note_once(
                    "its address is fixed, so a new build starts only after the old one stops: \
                     requests wait during each restart (never during the build). \
                     Read PORT or LISTEN_FDS for swaps without a pause"
                        .to_owned(),
                );
            }
        }
    }
}

/// A failed build, for `--events`: cargo's diagnostics without colour.
fn failure_fields(failure: &Failure, serving: bool) -> serde_json::Value {
    let diagnostics: Vec<_> = failure
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "level": if d.is_error { "error" } else { "warning" },
                "message": d.message,
                "file": d.file,
                "line": d.line,
                "rendered": console::strip_ansi_codes(&d.rendered),
            })
        })
        .collect();
    json!({
        "elapsed_ms": failure.elapsed.as_millis(),
        "errors": failure.errors(),
        "diagnostics": diagnostics,
        "cargo_errors": failure.cargo_errors,
        "serving": serving,
    })
}

/// Why a new app never became ready, for the terminal and the page;
/// `public` is the address manage itself listens on.
fn not_ready_reason(why: &NotReady, public: SocketAddr) -> String {
    match why {
        NotReady::Exited(exit) if address_in_use(exit) => format!(
            "it exited at start ({}) because the address it wants is in use. If that is {}, \
             the address manage's dev server holds, give manage another \
             (`manage runserver {}`) or have the app listen where manage says: it sets \
             HOST and PORT, ROCKET_ADDRESS and ROCKET_PORT (Rocket), BINDING (Loco), and \
             passes a socket as LISTEN_FDS. Otherwise another program holds it",
            exit.describe(),
            display_addr(public),
            public.port().wrapping_add(1).max(1024)
        ),
        NotReady::Exited(exit) => format!("it exited at start ({})", exit.describe()),
        NotReady::TimedOut { after, tried } => format!(
            "it did not answer within {} s. Tried: {tried}. \
             If it listens somewhere manage cannot see, pass `--app-addr [ADDR:]PORT` \
             (or `--app-addr unix:PATH` for a Unix socket)",
            after.as_secs()
        ),
    }
}

/// Whether an app that exited at start said its address was taken (Rust's
/// `AddrInUse`, the OS's text, or the errno's name).
fn address_in_use(exit: &Exit) -> bool {
    exit.output_tail.iter().any(|line| {
        let line = line.to_ascii_lowercase();
        line.contains("address already in use")
            || line.contains("addrinuse")
            || line.contains("eaddrinuse")
            || line.contains("os error 98")
    })
}

/// How an app ended, for `--events`.
pub(super) fn exit_fields(exit: &Exit) -> serde_json::Value {
    use std::os::unix::process::ExitStatusExt as _;
    json!({
        "status": exit.describe(),
        "code": exit.status.code(),
        "signal": exit.status.signal(),
        "output_tail": exit.output_tail.iter().rev().take(10).rev().collect::<Vec<_>>(),
    })
}
