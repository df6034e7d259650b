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

pub mod body;
pub mod build;
pub mod child;
pub mod config;
pub mod coordinator;
pub mod cycle;
pub mod discover;
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

pub use self::config::Args;
use self::config::{display_addr, Config, HOLD};
use self::coordinator::Coordinator;
use self::events::Events;
use self::hosts::AllowedHosts;
use self::livereload::{Hub, Snippets};
use self::proxy::ProxyConfig;
use self::reaper::Reaper;
use self::state::AppState;
use self::statics::Statics;
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
    let project = Project::load_for_bin(&args.selector, true, args.bin.as_deref())?;
    let config = Config::resolve(args, &project, events.clone())?;

    let listener = bind(config.addr).await?;
    let addr = listener.local_addr().unwrap_or(config.addr);
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

    let static_dir = config.plan.watch_set.static_dir.as_deref();
    let statics = match static_dir {
        Some(dir) if !config.nostatic => Statics::new(&config.static_url, dir),
        _ => None,
    };
    if let (Some(statics), Some(dir)) = (&statics, static_dir) {
        ui.verbose("Static", format!("{} from {}", statics.url, dir.display()));
    }
    let hub = Hub::new(events.clone());
    let (state_tx, state_rx) = watch_channel::channel(AppState {
        busy: true,
        ..AppState::default()
    });
    let static_prefix = statics.as_ref().map(|s| s.url.clone());
    let proxy_task = tokio::spawn(proxy::serve(
        listener,
        state_rx,
        Arc::new(ProxyConfig {
            hold: HOLD,
            response_timeout: config.response_timeout,
            hub: hub.clone(),
            livereload: config.livereload,
            snippets: Snippets::new(config.livereload)?,
            statics,
            hosts: AllowedHosts {
                extra: config.allowed_hosts.clone(),
                bound: addr.ip(),
            },
            ui: ui.clone(),
            migrations: config.migrations.as_ref().map(|check| check.subscribe()),
        }),
    ));

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

    let mut coordinator =
        Coordinator::new(ui, config, state_tx, watch_tx, hub, static_prefix, reaper);
    let result = coordinator.run(changes).await;
    coordinator.shutdown().await;
    proxy_task.abort();
    result
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
