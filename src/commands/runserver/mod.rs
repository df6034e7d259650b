//! `manage runserver [[ADDR:]PORT]`: the development server.
//!
//! Theory of operation. manage binds the public address itself and runs a
//! small hyper proxy on it ([`proxy`]). The app runs as a child process on
//! a free loopback port ([`child`]). A watcher ([`watch`]) turns file
//! events into debounced batches of real changes; each batch starts a
//! cycle: `cargo build` ([`build`]), then, when the executable changed, a
//! new child next to the old one. Only when the new child answers its
//! health check does the proxy switch to it; the old one is drained and
//! stopped. A failed build or a new child that never gets ready leaves the
//! old one serving. A new change cancels a cycle in progress.
//!
//! The stages are tasks that talk over channels; this file wires them
//! together and owns every decision.

pub mod build;
pub mod child;
pub mod errorpage;
pub mod livereload;
pub mod proxy;
pub mod statics;
pub mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch as watch_channel};
use tokio::task::JoinHandle;

use self::build::{BuildSpec, Outcome};
use self::child::{Child, Exit, NotReady};
use self::livereload::{Event, Hub};
use self::proxy::{AllowedHosts, AppState, Backend, Problem, ProxyConfig};
use self::statics::Statics;
use crate::error::hinted;
use crate::project::{Project, Selector};
use crate::ui::{Tone, Ui};

const DEFAULT_ADDR: &str = "127.0.0.1:8000";
const DEFAULT_DEBOUNCE_MS: u64 = 20;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage runserver                 http://127.0.0.1:8000/ (or `dev-addr` from Cargo.toml)
  manage runserver 8080            another port on 127.0.0.1
  manage runserver 0.0.0.0:8000    reachable from other machines (development only!)
  manage runserver [::1]:8000      IPv6 loopback

The app is started with HOST=127.0.0.1 and PORT=<a free port>; it must listen
there. manage holds the public address, so the browser never sees the app go
down: a new build takes traffic only once it is ready.")]
pub struct Args {
    /// Where to listen: PORT, ADDR:PORT or [IPV6]:PORT [default: `dev-addr` setting, else 127.0.0.1:8000]
    #[arg(value_name = "[ADDR:]PORT")]
    pub addrport: Option<String>,

    #[command(flatten)]
    pub selector: Selector,

    /// Binary to run, when the package has several
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,

    /// Build with the release profile
    #[arg(long)]
    pub release: bool,

    /// Features to activate (comma separated)
    #[arg(short = 'F', long, value_delimiter = ',', value_name = "FEATURES")]
    pub features: Vec<String>,

    /// Activate all features
    #[arg(long)]
    pub all_features: bool,

    /// Do not activate the `default` feature
    #[arg(long)]
    pub no_default_features: bool,

    /// Build and run once; do not watch for changes (Django's --noreload)
    #[arg(long)]
    pub noreload: bool,

    /// Path a new build must answer with 2xx before it gets traffic [setting: `health-path`; default: a TCP connect]
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,

    /// Quiet time after a change before building, in milliseconds [setting: `debounce-ms`; default: 20]
    #[arg(long, value_name = "MS")]
    pub debounce: Option<u64>,

    /// Seconds a new build may take to become ready
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub ready_timeout: u64,

    /// Seconds an old app gets to finish its requests after SIGTERM, before SIGKILL
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub grace: u64,

    /// Also accept requests for this Host (repeatable; `.example.com` for subdomains) [setting: `allowed-hosts`]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Do not inject the live-reload script into HTML pages [setting: `livereload = false`]
    #[arg(long)]
    pub no_livereload: bool,

    /// Do not serve the static directory; pass /static/ requests to the app
    #[arg(long)]
    pub nostatic: bool,
}

/// `[package.metadata.manage]`, as far as runserver reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Settings {
    dev_addr: Option<String>,
    static_dir: Option<PathBuf>,
    static_url: Option<String>,
    health_path: Option<String>,
    debounce_ms: Option<u64>,
    allowed_hosts: Option<Vec<String>>,
    livereload: Option<bool>,
    /// Read by `deploy-config`.
    #[allow(dead_code)]
    deploy: Option<serde_json::Value>,
}

/// Everything a cycle needs, derived from the project and the flags.
#[derive(Debug, Clone)]
struct Plan {
    spec: BuildSpec,
    package_dir: PathBuf,
    watch_set: watch::WatchSet,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, ui.clone()))
}

async fn serve(args: Args, ui: Ui) -> Result<()> {
    let project = Project::load(&args.selector, true)?;
    let settings: Settings = project.settings(None)?;
    let plan = plan(&project, &args, &settings)?;

    let addr_text = args
        .addrport
        .clone()
        .or(settings.dev_addr.clone())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr = parse_addr(&addr_text)?;
    let health_path = args.health_path.clone().or(settings.health_path.clone());
    if let Some(path) = &health_path {
        validate_health_path(path)?;
    }
    let debounce = Duration::from_millis(
        args.debounce
            .or(settings.debounce_ms)
            .unwrap_or(DEFAULT_DEBOUNCE_MS),
    );
    let static_url = settings
        .static_url
        .clone()
        .unwrap_or_else(|| "/static/".to_owned());
    validate_static_url(&static_url)?;
    let livereload = !args.no_livereload && settings.livereload.unwrap_or(true);
    let allowed_hosts: Vec<String> = settings
        .allowed_hosts
        .iter()
        .flatten()
        .chain(args.allowed_hosts.iter())
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();

    let listener = bind(addr).await?;
    let addr = listener.local_addr().unwrap_or(addr);

    ui.info(format!(
        "{} {}",
        ui.paint("manage runserver", Tone::Good),
        ui.paint(format!("v{}", env!("CARGO_PKG_VERSION")), Tone::Dim)
    ));
    ui.status(
        "Serving",
        format!(
            "`{}` at {}",
            plan.spec.bin,
            ui.bold(format!("http://{}/", display_addr(addr)))
        ),
    );
    if !addr.ip().is_loopback() {
        ui.warn(
            "this is a development server: do not use it in production. \
             Use `manage deploy-config` for a production setup.",
        );
    }
    if args.noreload {
        ui.note("--noreload: building once, not watching for changes");
    } else {
        ui.note("watching for changes; quit the server with CONTROL-C");
    }

    let statics = match (&plan.watch_set.static_dir, args.nostatic) {
        (Some(dir), false) => Statics::new(&static_url, dir),
        _ => None,
    };
    if let Some(statics) = &statics {
        ui.verbose(
            "Static",
            format!(
                "{} from {}",
                statics.url,
                plan.watch_set
                    .static_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            ),
        );
    }
    let hub = Hub::new();
    let (state_tx, state_rx) = watch_channel::channel(AppState {
        busy: true,
        ..AppState::default()
    });
    let static_prefix = statics.as_ref().map(|s| s.url.clone());
    let proxy_task = tokio::spawn(proxy::serve(
        listener,
        state_rx,
        Arc::new(ProxyConfig {
            hold: Duration::from_secs(30),
            hub: hub.clone(),
            livereload,
            snippets: proxy::Snippets::new(livereload)?,
            statics,
            hosts: AllowedHosts {
                extra: allowed_hosts,
                bound: addr.ip(),
            },
            ui: ui.clone(),
        }),
    ));

    let (watch_tx, watch_rx) = mpsc::unbounded_channel();
    let changes = if args.noreload {
        None
    } else {
        Some(watch::spawn(plan.watch_set.clone(), debounce, watch_rx)?)
    };

    let mut coordinator = Coordinator {
        ui: ui.clone(),
        args: &args,
        plan,
        health_path,
        state: state_tx,
        current: None,
        cycle: None,
        retiring: Vec::new(),
        watch: watch_tx,
        hub,
        static_prefix,
    };
    let result = coordinator.run(changes).await;
    coordinator.shutdown().await;
    proxy_task.abort();
    result
}

/// The running app and how to notice its end.
struct Current {
    child: Child,
    backend: Arc<Backend>,
    exited: std::pin::Pin<Box<dyn std::future::Future<Output = Exit> + Send>>,
}

/// A build-and-start in progress.
struct Cycle {
    cancel: oneshot::Sender<()>,
    handle: JoinHandle<CycleEnd>,
}

enum CycleEnd {
    Cancelled,
    Error(anyhow::Error),
    Failed {
        diagnostics: Vec<build::Diagnostic>,
        cargo_errors: Vec<String>,
        elapsed: Duration,
    },
    /// Built, but the executable did not change.
    Unchanged {
        exe: PathBuf,
        elapsed: Duration,
    },
    NotReady {
        exe: PathBuf,
        elapsed: Duration,
        why: NotReady,
    },
    Started {
        exe: PathBuf,
        child: Child,
        elapsed: Duration,
        ready_in: Duration,
    },
}

struct Coordinator<'a> {
    ui: Ui,
    args: &'a Args,
    plan: Plan,
    health_path: Option<String>,
    state: watch_channel::Sender<AppState>,
    current: Option<Current>,
    cycle: Option<Cycle>,
    retiring: Vec<JoinHandle<()>>,
    watch: mpsc::UnboundedSender<watch::Command>,
    hub: Arc<Hub>,
    /// The static URL prefix, when manage serves the static directory.
    static_prefix: Option<String>,
}

impl Coordinator<'_> {
    async fn run(
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
                end = join_cycle(&mut self.cycle) => {
                    self.cycle = None;
                    self.on_cycle_end(end);
                }
                exit = wait_exit(&mut self.current) => {
                    self.on_exit(exit);
                }
            }
        }
        self.ui.info("");
        self.ui.status("Stopping", "the development server");
        Ok(())
    }

    async fn on_change(&mut self, change: watch::Change) {
        if change.manifest {
            match self.reload_project().await {
                Ok(()) => {}
                Err(err) => {
                    self.ui.error(&err);
                    self.ui
                        .note("still serving the previous build; fix Cargo.toml and save");
                    return;
                }
            }
        }
        if change.code.is_empty() {
            // Static files only: no rebuild, the open tabs update.
            self.on_static_change(&change.statics);
            return;
        }
        let first = self.relative(&change.code[0]);
        let more = change.code.len() - 1;
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
            self.ui
                .note("build interrupted by a new change; starting again");
        }
        self.start_cycle(false);
    }

    fn on_static_change(&self, paths: &[PathBuf]) {
        let (Some(prefix), Some(dir)) = (&self.static_prefix, &self.plan.watch_set.static_dir)
        else {
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

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.plan.package_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    async fn reload_project(&mut self) -> Result<()> {
        let selector = self.args.selector.clone();
        let project = tokio::task::spawn_blocking(move || Project::load(&selector, true))
            .await
            .context("reading the project panicked")??;
        let settings: Settings = project.settings(None)?;
        self.plan = plan(&project, self.args, &settings)?;
        let _ = self
            .watch
            .send(watch::Command::Reset(self.plan.watch_set.clone()));
        self.ui.status("Reloaded", "Cargo.toml");
        Ok(())
    }

    fn start_cycle(&mut self, first: bool) {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let spec = self.plan.spec.clone();
        let ui = self.ui.clone();
        let cwd = self.plan.package_dir.clone();
        let health = self.health_path.clone();
        let ready_timeout = Duration::from_secs(self.args.ready_timeout);
        let force_start = first || self.current.is_none();
        self.state.send_modify(|s| s.busy = true);
        let handle = tokio::spawn(async move {
            cycle(spec, ui, cwd, health, ready_timeout, force_start, cancel_rx).await
        });
        self.cycle = Some(Cycle {
            cancel: cancel_tx,
            handle,
        });
    }

    async fn cancel_cycle(&mut self) {
        if let Some(cycle) = self.cycle.take() {
            let _ = cycle.cancel.send(());
            let _ = cycle.handle.await;
        }
    }

    fn on_cycle_end(&mut self, end: CycleEnd) {
        let serving = self.current.is_some();
        match end {
            CycleEnd::Cancelled => {}
            CycleEnd::Error(err) => {
                self.ui.error(&err);
                self.state.send_modify(|s| {
                    s.busy = false;
                    s.problem = Some(Problem::NotReady(Arc::new(format!("{err:#}"))));
                });
            }
            CycleEnd::Failed {
                diagnostics,
                cargo_errors,
                elapsed,
            } => {
                let errors = diagnostics.iter().filter(|d| d.is_error).count();
                let what = if serving {
                    "still serving the previous build"
                } else {
                    "no build to serve yet; fix the errors and save"
                };
                // Publish first, then announce: whoever reads the line
                // finds the proxy already in the state it describes.
                self.hub
                    .send(Event::Overlay(Arc::new(errorpage::build_failed(
                        &diagnostics,
                        &cargo_errors,
                    ))));
                self.state.send_modify(|s| {
                    s.busy = false;
                    s.problem = Some(Problem::BuildFailed {
                        diagnostics: Arc::new(diagnostics),
                        cargo_errors: Arc::new(cargo_errors),
                    });
                });
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
                    if matches!(s.problem, Some(Problem::BuildFailed { .. })) {
                        s.problem = None;
                    }
                });
                self.hub.send(Event::Clear);
                self.ui.info(format!(
                    "{} in {} · executable unchanged, no restart",
                    self.ui.paint("Built", Tone::Good),
                    secs(elapsed)
                ));
            }
            CycleEnd::NotReady { exe, elapsed, why } => {
                self.note_build_inputs(&exe);
                let reason = match &why {
                    NotReady::Exited(exit) => format!("it exited at start ({})", exit.describe()),
                    NotReady::TimedOut(t) => format!(
                        "it did not answer on its PORT within {} s (does it listen on $HOST:$PORT?)",
                        t.as_secs()
                    ),
                };
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
                let (problem, tail) = match why {
                    NotReady::Exited(exit) => {
                        self.hub
                            .send(Event::Overlay(Arc::new(errorpage::crashed(&exit))));
                        let exit = Arc::new(exit);
                        (Problem::Crashed(exit.clone()), Some(exit))
                    }
                    NotReady::TimedOut(_) => {
                        self.hub
                            .send(Event::Overlay(Arc::new(errorpage::not_running(&reason))));
                        (Problem::NotReady(Arc::new(reason)), None)
                    }
                };
                self.state.send_modify(|s| {
                    s.busy = false;
                    s.problem = Some(problem);
                });
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
            } => {
                self.note_build_inputs(&exe);
                let backend = Backend::new(child.addr);
                let exited = Box::pin(child.exited());
                let old = self.current.replace(Current {
                    child,
                    backend: backend.clone(),
                    exited,
                });
                // The switch: every request from now on goes to the new child.
                self.state.send_modify(|s| {
                    s.backend = Some(backend);
                    s.busy = false;
                    s.problem = None;
                });
                // Every open tab shows the new build.
                self.hub.send(Event::Reload);
                let verb = if old.is_some() {
                    "restarted"
                } else {
                    "started"
                };
                self.ui.info(format!(
                    "{} in {} · {verb} in {} ms",
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

    fn note_build_inputs(&self, exe: &Path) {
        let _ = self
            .watch
            .send(watch::Command::BuildInputs(build::dep_info(exe)));
    }

    /// Drains the old child through the proxy, then stops it.
    fn retire(&mut self, old: Current) {
        let grace = Duration::from_secs(self.args.grace);
        self.retiring.retain(|h| !h.is_finished());
        self.retiring.push(tokio::spawn(async move {
            old.backend.drained(grace).await;
            let _ = old.child.stop(grace).await;
        }));
    }

    fn on_exit(&mut self, exit: Exit) {
        self.current = None;
        self.hub
            .send(Event::Overlay(Arc::new(errorpage::crashed(&exit))));
        let line = format!(
            "{} ({}) — waiting for a change to rebuild and restart it",
            self.ui.paint("The app exited", Tone::Bad),
            exit.describe()
        );
        let exit = Arc::new(exit);
        self.state.send_modify(|s| {
            s.backend = None;
            s.problem = Some(Problem::Crashed(exit.clone()));
        });
        self.ui.info(line);
        self.print_tail(&exit);
    }

    fn print_tail(&self, exit: &Exit) {
        if exit.stderr_tail.is_empty() {
            return;
        }
        self.ui
            .info(self.ui.paint("  last lines of its stderr:", Tone::Dim));
        for line in exit.stderr_tail.iter().rev().take(10).rev() {
            self.ui.info(format!(
                "  {}",
                self.ui.paint(console::strip_ansi_codes(line), Tone::Dim)
            ));
        }
    }

    /// Ends everything: the build, the app (gracefully, then forcefully),
    /// and any app still draining.
    async fn shutdown(&mut self) {
        self.cancel_cycle().await;
        let grace = Duration::from_secs(self.args.grace);
        if let Some(current) = self.current.take() {
            let exit = current.child.stop(grace).await;
            self.ui
                .verbose("Stopped", format!("the app ({})", exit.describe()));
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

async fn join_cycle(cycle: &mut Option<Cycle>) -> CycleEnd {
    match cycle {
        Some(c) => match (&mut c.handle).await {
            Ok(end) => end,
            Err(err) => CycleEnd::Error(anyhow::anyhow!("the build task failed: {err}")),
        },
        None => std::future::pending().await,
    }
}

async fn wait_exit(current: &mut Option<Current>) -> Exit {
    match current {
        Some(c) => (&mut c.exited).await,
        None => std::future::pending().await,
    }
}

/// Build, and when the executable changed (or nothing runs yet), start a
/// new child and wait for it to be ready.
async fn cycle(
    spec: BuildSpec,
    ui: Ui,
    cwd: PathBuf,
    health: Option<String>,
    ready_timeout: Duration,
    force_start: bool,
    mut cancel: oneshot::Receiver<()>,
) -> CycleEnd {
    let (build_cancel_tx, build_cancel_rx) = oneshot::channel();
    let build = build::build(&spec, &ui, build_cancel_rx);
    tokio::pin!(build);
    let outcome = tokio::select! {
        outcome = &mut build => outcome,
        _ = &mut cancel => {
            let _ = build_cancel_tx.send(());
            let _ = build.await;
            return CycleEnd::Cancelled;
        }
    };
    let (exe, fresh, elapsed) = match outcome {
        Err(err) => return CycleEnd::Error(err),
        Ok(Outcome::Cancelled) => return CycleEnd::Cancelled,
        Ok(Outcome::Failed {
            diagnostics,
            cargo_errors,
            elapsed,
        }) => {
            return CycleEnd::Failed {
                diagnostics,
                cargo_errors,
                elapsed,
            }
        }
        Ok(Outcome::Built {
            exe,
            fresh,
            elapsed,
        }) => (exe, fresh, elapsed),
    };
    if fresh && !force_start {
        return CycleEnd::Unchanged { exe, elapsed };
    }
    let started = Instant::now();
    let mut child = match Child::spawn(&exe, &cwd, &ui) {
        Ok(child) => child,
        Err(err) => return CycleEnd::Error(err),
    };
    let ready = tokio::select! {
        ready = child.wait_ready(health.as_deref(), ready_timeout) => ready,
        // Dropping the child kills its process group.
        _ = &mut cancel => return CycleEnd::Cancelled,
    };
    match ready {
        Ok(()) => CycleEnd::Started {
            exe,
            child,
            elapsed,
            ready_in: started.elapsed(),
        },
        Err(why) => {
            child.stop(Duration::from_millis(500)).await;
            CycleEnd::NotReady { exe, elapsed, why }
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Picks the package's binary and the directories to watch.
fn plan(project: &Project, args: &Args, settings: &Settings) -> Result<Plan> {
    let package = project.package();
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.as_str())
        .collect();
    let list = || {
        bins.iter()
            .map(|b| format!("`{b}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bin = match (&args.bin, bins.as_slice()) {
        (_, []) => {
            return Err(hinted(
                format!("package `{}` has no binary target to run", package.name),
                "runserver runs a web server binary: add `src/main.rs` or a `[[bin]]` target",
            ))
        }
        (Some(wanted), _) => {
            if !bins.contains(&wanted.as_str()) {
                return Err(hinted(
                    format!("package `{}` has no binary named `{wanted}`", package.name),
                    format!("choose one of {}", list()),
                ));
            }
            wanted.clone()
        }
        (None, [only]) => (*only).to_owned(),
        (None, _) => match &package.default_run {
            Some(default) => default.clone(),
            None => {
                return Err(hinted(
                    format!("package `{}` has several binaries", package.name),
                    format!(
                        "pick one with `--bin NAME` ({}), or set `default-run` in Cargo.toml",
                        list()
                    ),
                ))
            }
        },
    };

    let package_dir = project.package_dir().to_path_buf();
    let mut roots: Vec<PathBuf> = project
        .metadata
        .packages
        .iter()
        .filter(|p| p.source.is_none())
        .filter_map(|p| {
            p.manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
        })
        .collect();
    roots.push(project.workspace_root().to_path_buf());
    roots.sort();
    roots.dedup();
    let nested: Vec<PathBuf> = roots
        .iter()
        .filter(|r| roots.iter().any(|o| o != *r && r.starts_with(o)))
        .cloned()
        .collect();
    roots.retain(|r| !nested.contains(r));

    let static_dir = Some(
        package_dir.join(
            settings
                .static_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("static")),
        ),
    );

    Ok(Plan {
        spec: BuildSpec {
            manifest_path: project.manifest_path().to_path_buf(),
            package: package.name.to_string(),
            bin,
            release: args.release,
            features: args.features.clone(),
            all_features: args.all_features,
            no_default_features: args.no_default_features,
        },
        package_dir,
        watch_set: watch::WatchSet {
            roots,
            target_dir: project.target_dir().to_path_buf(),
            static_dir,
        },
    })
}

/// Django's forms: `8000`, `0.0.0.0:8000`, `[::1]:8000`, `localhost:8000`.
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let hint = "use a port (`8080`), an address and port (`0.0.0.0:8000`), or an IPv6 address in brackets (`[::1]:8000`)";
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        if port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            if let Some(addr) = text.to_socket_addrs().ok().and_then(|mut a| a.next()) {
                return Ok(addr);
            }
            return Err(hinted(format!("cannot resolve host `{host}`"), hint));
        }
    }
    Err(hinted(
        format!("`{text}` is not a valid port or address:port"),
        hint,
    ))
}

fn display_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

fn validate_static_url(url: &str) -> Result<()> {
    if !url.starts_with('/')
        || url == "/"
        || url.starts_with(RESERVED_PREFIX)
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return Err(hinted(
            format!("static URL `{}` is not usable", url.escape_debug()),
            "set `static-url` to a path prefix such as `/static/`",
        ));
    }
    Ok(())
}

const RESERVED_PREFIX: &str = "/__manage/";

fn validate_health_path(path: &str) -> Result<()> {
    if !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        bail!(
            "health path `{}` must start with `/` and contain no spaces or control characters",
            path.escape_debug()
        );
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Err(hinted(
            format!("port {} on {} is already in use", addr.port(), addr.ip()),
            format!(
                "stop the other server, or pick another port: `manage runserver {}`",
                addr.port().wrapping_add(1).max(1024)
            ),
        )),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("cannot listen on {}", display_addr(addr))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_address_forms() {
        assert_eq!(
            parse_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("0.0.0.0:8000").unwrap(),
            "0.0.0.0:8000".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::1]:8000").unwrap(),
            "[::1]:8000".parse().unwrap()
        );
        assert!(parse_addr("localhost:8000").unwrap().ip().is_loopback());
        for bad in ["", "abc", "99999", "1.2.3.4", ":80", "a b:80", "[::1]"] {
            assert!(parse_addr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn health_paths() {
        assert!(validate_health_path("/healthz").is_ok());
        for bad in ["healthz", "/a b", "/a\r\nX: y", "/#x"] {
            assert!(validate_health_path(bad).is_err(), "{bad:?}");
        }
    }
}
