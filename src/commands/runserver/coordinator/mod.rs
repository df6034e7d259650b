//! The coordinator: one task that owns every decision. It reacts to file
//! changes (start or cancel a cycle), to the end of a cycle (switch the
//! proxy to the new app, or report why not), to the app's exit, and to
//! Ctrl-C/SIGTERM; it publishes the outcome to the proxy ([`AppState`])
//! and to open tabs ([`Event`]) before announcing it in the terminal.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;
use tokio::sync::{mpsc, watch as watch_channel};
use tokio::task::JoinHandle;

use super::build;
use super::child::{Child, Exit};
use super::config::{Config, HOLD};
use super::cycle::{self, Cycle, Job};
use super::errorpage;
use super::livereload::{Event, Hub};
use super::proxy::ProxyConfig;
mod outcome;

use super::reaper::Reaper;
use super::state::{AppState, Backend, Problem};
use super::watch;
use crate::project::Project;
use crate::ui::{Tone, Ui};

/// The running app and how to notice its end.
struct Current {
    child: Child,
    backend: Arc<Backend>,
    exited: std::pin::Pin<Box<dyn std::future::Future<Output = Exit> + Send>>,
}

/// What the coordinator publishes to the proxy.
pub struct Proxy {
    /// Which app gets traffic.
    pub state: watch_channel::Sender<AppState>,
    /// The settings requests read.
    pub snapshots: watch_channel::Sender<Option<Arc<ProxyConfig>>>,
    /// The address the proxy is bound to.
    pub bound: IpAddr,
}

pub struct Coordinator {
    ui: Ui,
    config: Config,
    state: watch_channel::Sender<AppState>,
    snapshots: watch_channel::Sender<Option<Arc<ProxyConfig>>>,
    bound: IpAddr,
    current: Option<Current>,
    cycle: Option<Cycle>,
    retiring: Vec<JoinHandle<()>>,
    watch: mpsc::UnboundedSender<watch::Command>,
    hub: Arc<Hub>,
    /// The app listens on an address of its own: a new build can only
    /// start once the old one has stopped.
    fixed: bool,
    /// The cycle under way stopped the old app first.
    replacing: bool,
    /// Notes already given (said once per run).
    noted: Vec<String>,
    reaper: Reaper,
}

impl Coordinator {
    pub fn new(
        ui: Ui,
        config: Config,
        proxy: Proxy,
        watch: mpsc::UnboundedSender<watch::Command>,
        hub: Arc<Hub>,
        reaper: Reaper,
    ) -> Coordinator {
        Coordinator {
            ui,
            config,
            state: proxy.state,
            snapshots: proxy.snapshots,
            bound: proxy.bound,
            current: None,
            cycle: None,
            retiring: Vec::new(),
            watch,
            hub,
            fixed: false,
            replacing: false,
            noted: Vec::new(),
            reaper,
        }
    }

    pub async fn run(
        &mut self,
        mut changes: Option<mpsc::UnboundedReceiver<watch::Change>>,
    ) -> Result<()> {
        self.start_cycle(true);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                change = recv_change(&mut changes) => {
                    let Some(change) = change else { continue };
                    self.on_change(change).await;
                }
                end = cycle::join(&mut self.cycle) => {
                    self.cycle = None;
                    self.on_cycle_end(end);
                }
                exit = wait_exit(&mut self.current) => {
                    self.on_exit(exit);
                }
            }
        }
        self.config.events.emit("stopping", json!(null));
        self.ui.info("");
        self.ui.status("Stopping", "the development server");
        Ok(())
    }

    async fn on_change(&mut self, change: watch::Change) {
        let paths = |list: &[PathBuf]| list.iter().map(|p| self.relative(p)).collect::<Vec<_>>();
        self.config.events.emit(
            "change",
            json!({
                "code": paths(&change.code),
                "static": paths(&change.statics),
                "runtime": paths(&change.runtime),
                "manifest": change.manifest,
            }),
        );
        if change.manifest {
            match self.reload_project().await {
                Ok(changed) => self
                    .config
                    .events
                    .emit("manifest-reloaded", json!({ "changed": changed })),
                Err(err) => {
                    self.emit_error(&err);
                    self.ui.error(&err);
                    self.ui
                        .note("still serving the previous build; fix Cargo.toml and save");
                    return;
                }
            }
        }
        // Nothing serves (the app crashed) and nothing builds: any save
        // starts it again, as a source edit would.
        let restart = self.current.is_none() && self.cycle.is_none() && !change.runtime.is_empty();
        if change.code.is_empty() && !restart {
            // Files no build reads: no cargo, the open tabs update.
            self.on_static_change(&change.statics);
            self.on_runtime_change(&change.runtime);
            return;
        }
        let code = if change.code.is_empty() {
            &change.runtime
        } else {
            &change.code
        };
        let first = self.relative(&code[0]);
        let more = code.len() - 1;
        self.ui.status(
            "Changed",
            if more == 0 {
                first
            } else {
                format!("{first} and {more} more")
            },
        );
        let was_running = self.cycle.is_some();
        self.cancel_cycle().await;
        if was_running {
            self.config.events.emit("build-cancelled", json!(null));
            self.ui
                .note("build interrupted by a new change; starting again");
        }
        self.start_cycle(false);
    }

    fn on_static_change(&self, paths: &[PathBuf]) {
        let prefix = self
            .snapshots
            .borrow()
            .as_ref()
            .and_then(|c| c.static_prefix().map(str::to_owned));
        let (Some(prefix), Some(dir)) = (prefix, &self.config.plan.watch_set.static_dir) else {
            return;
        };
        self.ui.status(
            "Changed",
            paths
                .iter()
                .map(|p| self.relative(p))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let css: Option<Vec<String>> = paths
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(dir).ok()?;
                (p.extension().is_some_and(|e| e == "css")).then(|| {
                    let rel: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    format!("{prefix}{}", rel.join("/"))
                })
            })
            .collect();
        match css {
            Some(urls) if !urls.is_empty() => self.hub.send(Event::Css(urls)),
            _ => self.hub.send(Event::Reload),
        }
    }

    /// Files the app reads as it runs changed: the open tabs reload to
    /// show them (the app itself stays as it is).
    fn on_runtime_change(&self, paths: &[PathBuf]) {
        if paths.is_empty() {
            return;
        }
        let names: Vec<String> = paths.iter().map(|p| self.relative(p)).collect();
        self.ui.status(
            "Changed",
            format!(
                "{} {}",
                names.join(", "),
                self.ui.paint("· not a build input, no build", Tone::Dim)
            ),
        );
        if self.current.is_some() {
            self.hub.send(Event::Reload);
        }
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.config.plan.package_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Cargo.toml changed: every setting is read again, from the same
    /// flags, and each stage gets the new snapshot (the proxy at its next
    /// request, the watcher, the next cycle). Returns the settings that
    /// changed.
    async fn reload_project(&mut self) -> Result<Vec<&'static str>> {
        let selector = self.config.selector.clone();
        let bin = self.config.build.bin.clone();
        let project = tokio::task::spawn_blocking(move || {
            Project::load_for_bin(&selector, true, bin.as_deref())
        })
        .await
        .context("reading the project panicked")??;
        let mut new = self.config.reload(&project)?;
        let changed = self.config.differences(&new);
        if new.addr != self.config.addr {
            self.ui.note(format!(
                "`dev-addr` is now {}: restart runserver to listen there (it stays on {})",
                new.addr, self.config.addr
            ));
            new.addr = self.config.addr;
        }
        if !changed.contains(&"database-url") && !changed.contains(&"migrations-dir") {
            // Its last finding stays on the pages until the next start.
            new.migrations = self.config.migrations.clone();
        }
        let snapshot = ProxyConfig::new(&new, self.bound, self.hub.clone(), &self.ui)?;
        self.snapshots.send_replace(Some(Arc::new(snapshot)));
        let _ = self.watch.send(watch::Command::Reset(
            new.plan.watch_set.clone(),
            new.debounce,
        ));
        self.config = new;
        self.ui.status(
            "Reloaded",
            if changed.is_empty() {
                "Cargo.toml".to_owned()
            } else {
                format!(
                    "Cargo.toml {}",
                    self.ui
                        .paint(format!("· {}", changed.join(", ")), Tone::Dim)
                )
            },
        );
        Ok(changed)
    }

    fn job(&self) -> Job {
        Job {
            spec: self.config.plan.spec.clone(),
            app_args: self.config.app_args.clone(),
            ui: self.ui.clone(),
            cwd: self.config.plan.package_dir.clone(),
            health: self.config.health_path.clone(),
            app_addr: self.config.app_addr.clone(),
            ready_timeout: self.config.ready_timeout,
            force_start: self.current.is_none(),
            build_only: false,
            prebuilt: None,
            replace: None,
            reaper: self.reaper.clone(),
            migrations: self.config.migrations.clone(),
            events: self.config.events.clone(),
        }
    }

    fn start_cycle(&mut self, first: bool) {
        self.state.send_modify(|s| s.busy = true);
        let mut job = self.job();
        job.force_start |= first;
        // An app on a fixed address builds while the old one serves, and
        // only then stops it (phase two, in `start_replacement`).
        job.build_only = self.fixed && self.current.is_some();
        self.replacing = false;
        self.cycle = Some(Cycle::spawn(job));
    }

    /// Says `message` once per run.
    fn note_once(&mut self, message: String) {
        if !self.noted.contains(&message) {
            self.ui.note(&message);
            self.noted.push(message);
        }
    }

    async fn cancel_cycle(&mut self) {
        if let Some(cycle) = self.cycle.take() {
            let _ = cycle.cancel.send(());
            let _ = cycle.handle.await;
        }
    }

    /// Publishes a problem to the proxy, in one update with `also`, then
    /// to the open tabs (so that a page loaded on the tabs' news shows it).
    fn publish_problem(&self, problem: Problem, also: impl FnOnce(&mut AppState)) {
        let (_, fragment) = errorpage::describe(&problem, HOLD, self.config.editor.as_deref());
        self.state.send_modify(|s| {
            also(s);
            s.problem = Some(problem);
        });
        self.hub.send(Event::Overlay(Arc::new(fragment)));
    }

    fn emit_error(&self, err: &anyhow::Error) {
        self.config.events.emit(
            "error",
            json!({ "message": format!("{err:#}"), "fatal": false }),
        );
    }

    fn note_build_inputs(&self, exe: &Path) {
        let _ = self
            .watch
            .send(watch::Command::BuildInputs(build::dep_info(exe)));
    }

    /// Drains the old child through the proxy, then stops it.
    fn retire(&mut self, old: Current) {
        let grace = self.config.grace;
        self.retiring.retain(|h| !h.is_finished());
        self.retiring.push(tokio::spawn(async move {
            old.backend.drained(grace).await;
            old.backend.close();
            let _ = old.child.stop(grace).await;
            let _ = tokio::task::spawn_blocking(old.backend.addr.sweep()).await;
        }));
    }

    fn on_exit(&mut self, exit: Exit) {
        let ended = self.current.take();
        let pid = ended.as_ref().map(|c| c.child.pid());
        if let Some(ended) = &ended {
            // Before the next save starts it again.
            tokio::task::spawn_blocking(ended.backend.addr.sweep());
        }
        let line = format!(
            "{} ({}) — waiting for a change to rebuild and restart it",
            self.ui.paint("The app exited", Tone::Bad),
            exit.describe()
        );
        let exit = Arc::new(exit);
        self.publish_problem(Problem::Crashed(exit.clone()), |s| s.backend = None);
        let mut fields = outcome::exit_fields(&exit);
        fields["pid"] = pid.into();
        self.config.events.emit("app-exited", fields);
        self.ui.info(line);
        self.print_tail(&exit);
    }

    /// Ends everything: the build, the app (gracefully, then forcefully),
    /// and any app still draining.
    pub async fn shutdown(&mut self) {
        self.cancel_cycle().await;
        if let Some(current) = self.current.take() {
            current.backend.close();
            let exit = current.child.stop(self.config.grace).await;
            self.ui
                .verbose("Stopped", format!("the app ({})", exit.describe()));
            let _ = tokio::task::spawn_blocking(current.backend.addr.sweep()).await;
        }
        for handle in self.retiring.drain(..) {
            let _ = handle.await;
        }
    }
}

async fn recv_change(
    changes: &mut Option<mpsc::UnboundedReceiver<watch::Change>>,
) -> Option<watch::Change> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn wait_exit(current: &mut Option<Current>) -> Exit {
    match current {
        Some(c) => (&mut c.exited).await,
        None => std::future::pending().await,
    }
}

/// A cycle is over: requests stop waiting for it.
fn cycle_over(state: &mut AppState) {
    state.busy = false;
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
