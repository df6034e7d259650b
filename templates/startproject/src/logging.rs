//! Logs: `tracing` events to stderr, one line each.
//!
//! Readable lines by default; with `LOG_FORMAT=json` (what the units, the
//! image and the manifests `manage deploy-config` writes set) one JSON
//! object per line, for journald, Loki or any log pipeline. Every line
//! written while a request is answered carries its request id (the
//! `request` span); one `access` line per request says how it ended.
//!
//! JSON lines are written in batches, a few times a second (see [`sink`]).
//!
//! `RUST_LOG` picks levels as `info` or `warn,access=off` (targets, no
//! regular expressions). `ACCESS_LOG=off` drops the access lines: `manage
//! runserver` sets it, since it prints a line per request itself.

mod json;
mod sink;

/// Writes the JSON lines still waiting to be written; call before exiting.
pub use sink::flush;

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(spec) => Targets::from_str(&spec).unwrap_or_else(|err| {
            eprintln!("RUST_LOG `{spec}` is not a log filter ({err}); using `info`");
            Targets::new().with_default(LevelFilter::INFO)
        }),
        Err(_) => Targets::new().with_default(LevelFilter::INFO),
    };
    if std::env::var("ACCESS_LOG").is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "false")) {
        filter = filter.with_target("access", LevelFilter::OFF);
    }
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(_) => false,
        Ok(other) => {
            eprintln!("LOG_FORMAT is `json` or `text`, not `{other}`; using text");
            false
        }
    };
    let result = if json {
        let subscriber = tracing_subscriber::registry().with(json::Json).with(filter);
        let result = tracing::subscriber::set_global_default(subscriber);
        if result.is_ok() {
            // Lines waiting in the sink go out before the panic message.
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                sink::flush();
                report(info);
            }));
        }
        result
    } else {
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(colour)
            .with_target(false)
            .compact()
            .finish()
            .with(filter);
        tracing::subscriber::set_global_default(subscriber)
    };
    if let Err(err) = result {
        eprintln!("cannot set up logging: {err}");
    }
}
