//! `manage runserver [[ADDR:]PORT]`: the development server.
//!
//! Theory of operation. manage binds the public address itself and runs a
//! small hyper proxy on it ([`proxy`]). The app runs as a child process
//! ([`child`]) given a listening socket of its own ([`handoff`]) and a free
//! `PORT`; [`ready`] finds where it answers, also when it listens on an
//! address of its own choosing ([`discover`]). A watcher ([`watch`]) turns file
//! events into debounced batches of real changes; each batch starts a
//! [`cycle`]: `cargo build` ([`build`]), then, when the executable changed,
//! a new child next to the old one. Only when the new child answers its
//! health check does the proxy switch to it; the old one is drained and
//! stopped. A failed build or a new child that never gets ready leaves the
//! old one serving. A new change cancels a cycle in progress.
//!
//! The flags and settings are resolved once into a [`config::Config`].
//! The stages are tasks that talk over channels; the [`coordinator`] owns
//! every decision and publishes it to the proxy through [`state`]. This
//! file only wires them together.

pub mod addr;
pub mod body;
pub mod build;
pub mod child;
pub mod config;
pub mod coordinator;
pub mod cycle;
pub mod discover;
pub mod editor;
pub mod errorpage;
pub mod events;
pub mod fingerprint;
pub mod handoff;
pub mod headers;
pub mod hosts;
pub mod inject;
pub mod livereload;
pub mod migrations;
pub mod process;
pub mod proxy;
pub mod ready;
pub mod reaper;
pub mod stall;
pub mod state;
pub mod statics;

pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde_json::json;
use tokio::sync::{mpsc, watch as watch_channel};

use self::addr::display_addr;
pub use self::config::Args;
use self::config::Config;
use self::coordinator::Coordinator;
use self::events::Events;
use self::livereload::Hub;
use self::proxy::ProxyConfig;
use self::reaper::Reaper;
use self::state::AppState;
use crate::error::hinted;
use crate::project::Project;
use crate::ui::{Tone, Ui};

/// `manage __reap`, the hidden helper of [`reaper`].
pub fn reap() -> Result<()> {
    reaper::run()
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    raise_fd_limit(ui);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, ui.clone()))
}

async fn serve(args: Args, ui: Ui) -> Result<()> {
    // First, so that nothing manage starts can outlive it.
    let reaper = Reaper::start()?;
    let events = match &args.events {
        Some(path) => Events::open(path, &ui)?,
        None => Events::none(),
    };
    let result = serve_with(args, ui, reaper, events.clone()).await;
    match &result {
        Ok(()) => events.emit("stopped", json!(null)),
        Err(err) => events.emit(
            "error",
            json!({ "message": format!("{err:#}"), "fatal": true }),
        ),
    }
    events.close();
    result
}

async fn serve_with(args: Args, ui: Ui, reaper: Reaper, events: Events) -> Result<()> {
    // The address is held from the first instant: before cargo resolves
    // the dependencies (a second or more on a first run), requests wait
    // as they do during a build.
    let early = bind_early(&args).await;
    let (state_tx, state_rx) = watch_channel::channel(AppState {
        busy: true,
        ..AppState::default()
    });
    let (snapshot_tx, snapshot_rx) = watch_channel::channel(None);
    let start_proxy = |listener| {
        Aborting(tokio::spawn(proxy::serve(
            listener,
            state_rx.clone(),
            snapshot_rx.clone(),
            ui.clone(),
        )))
    };
    let listening = |addr: SocketAddr| {
        events.emit(
            "listening",
            json!({ "addr": addr.to_string(), "url": format!("http://{}/", display_addr(addr)) }),
        )
    };
    let early = early.map(|(wanted, listener)| {
        let local = listener.local_addr().unwrap_or(wanted);
        listening(local);
        (wanted, local, start_proxy(listener))
    });

    let selector = args.selector.clone();
    let bin = args.bin.clone();
    let project =
        tokio::task::spawn_blocking(move || Project::load_for_bin(&selector, true, bin.as_deref()))
            .await
            .context("reading the project panicked")??;
    let config = Config::resolve(args, &project, events.clone())?;

    let (addr, _proxy) = match early {
        Some((wanted, local, proxy)) if wanted == config.addr => (local, proxy),
        // `-p` chose a package with a `dev-addr` of its own.
        other => {
            drop(other);
            let listener = bind(config.addr).await?;
            (
                listener.local_addr().unwrap_or(config.addr),
                start_proxy(listener),
            )
        }
    };
    events.emit(
        "serving",
        json!({
            "addr": addr.to_string(),
            "url": format!("http://{}/", display_addr(addr)),
            "bin": config.plan.spec.bin,
            "pid": std::process::id(),
        }),
    );

    ui.info(format!(
        "{} {}",
        ui.paint("manage runserver", Tone::Good),
        ui.paint(format!("v{}", env!("CARGO_PKG_VERSION")), Tone::Dim)
    ));
    ui.status(
        "Serving",
        format!(
            "`{}` at {}",
            config.plan.spec.bin,
            ui.bold(format!("http://{}/", display_addr(addr)))
        ),
    );
    if !addr.ip().is_loopback() {
        ui.warn(
            "this is a development server: do not use it in production. \
             Use `manage deploy-config` for a production setup.",
        );
    }
    if config.noreload {
        ui.note("--noreload: building once, not watching for changes");
    } else {
        ui.note("watching for changes; quit the server with CONTROL-C");
    }

    let hub = Hub::new(events.clone());
    snapshot_tx.send_replace(Some(Arc::new(ProxyConfig::new(
        &config,
        addr.ip(),
        hub.clone(),
        &ui,
    )?)));

    let (watch_tx, watch_rx) = mpsc::unbounded_channel();
    let changes = if config.noreload {
        None
    } else {
        Some(watch::spawn(
            config.plan.watch_set.clone(),
            config.debounce,
            watch_rx,
            events.path(),
        )?)
    };

    let proxy = coordinator::Proxy {
        state: state_tx,
        snapshots: snapshot_tx,
        bound: addr.ip(),
    };
    let mut coordinator = Coordinator::new(ui, config, proxy, watch_tx, hub, reaper);
    let result = coordinator.run(changes).await;
    coordinator.shutdown().await;
    result
}

/// The proxy's task, ended when runserver returns (also on an error).
struct Aborting(tokio::task::JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the address the flags or the package's `dev-addr` give, read
/// from the workspace's own manifests (`cargo metadata --no-deps`, tens
/// of milliseconds). Anything that fails here is left for the full read
/// to report.
async fn bind_early(args: &Args) -> Option<(SocketAddr, tokio::net::TcpListener)> {
    let selector = args.selector.clone();
    let bin = args.bin.clone();
    let given = args.addrport.clone();
    let addr = tokio::task::spawn_blocking(move || {
        let text = match given {
            Some(text) => text,
            None => {
                let project = Project::load_for_bin(&selector, false, bin.as_deref()).ok()?;
                crate::settings::Settings::load(&project)
                    .ok()?
                    .dev_addr
                    .unwrap_or_else(|| config::DEFAULT_ADDR.to_owned())
            }
        };
        addr::parse_addr(&text).ok()
    })
    .await
    .ok()??;
    let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
    Some((addr, listener))
}

/// Every browser tab, proxied connection and static file is a file
/// descriptor; at the usual soft limit of 1,024 new requests would hang.
/// The soft limit goes up to the hard one, as servers do.
fn raise_fd_limit(ui: &Ui) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let old = limit.rlim_cur;
            // An unlimited hard limit is still bounded by the kernel's nr_open.
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                ui.verbose("Limits", format!("open files {old} -> {}", limit.rlim_cur));
            }
        }
    }
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
