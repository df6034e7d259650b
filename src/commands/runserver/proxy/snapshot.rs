//! What the proxy reads of runserver's settings: one snapshot, made from
//! the [`Config`] when runserver starts and again whenever Cargo.toml
//! changes, published on a watch channel. A request reads it once, so it
//! sees one version of every setting, never half of an edit.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

use super::super::config::{Config, HOLD};
use super::super::editor::Editor;
use super::super::hosts::AllowedHosts;
use super::super::livereload::{Hub, Snippets};
use super::super::migrations::Pending;
use super::super::statics::Statics;
use crate::ui::Ui;

/// Everything a request needs to know, shared by all connections.
pub struct ProxyConfig {
    /// How long a request waits for an app while a build runs.
    pub hold: Duration,
    /// How long the app may take to start answering a request.
    pub response_timeout: Duration,
    pub hub: Arc<Hub>,
    pub livereload: bool,
    pub snippets: Snippets,
    pub statics: Option<Statics>,
    pub hosts: AllowedHosts,
    pub ui: Ui,
    /// Unapplied migrations, from the check before each start.
    pub migrations: Option<watch::Receiver<Pending>>,
    pub editor: Option<Arc<Editor>>,
}

/// The proxy's end of the snapshots: none until the project is read.
pub type Snapshots = watch::Receiver<Option<Arc<ProxyConfig>>>;

impl ProxyConfig {
    /// The snapshot of `config` for a proxy bound to `bound`.
    pub fn new(config: &Config, bound: IpAddr, hub: Arc<Hub>, ui: &Ui) -> Result<ProxyConfig> {
        let statics = match config.plan.watch_set.static_dir.as_deref() {
            Some(dir) if !config.nostatic => Statics::new(&config.static_url, dir),
            _ => None,
        };
        if let (Some(statics), Some(dir)) = (&statics, &config.plan.watch_set.static_dir) {
            ui.verbose("Static", format!("{} from {}", statics.url, dir.display()));
        }
        Ok(ProxyConfig {
            hold: HOLD,
            response_timeout: config.response_timeout,
            hub,
            livereload: config.livereload,
            snippets: Snippets::new(config.livereload)?,
            statics,
            hosts: AllowedHosts {
                extra: config.allowed_hosts.clone(),
                bound,
            },
            ui: ui.clone(),
            migrations: config.migrations.as_ref().map(|check| check.subscribe()),
            editor: config.editor.clone(),
        })
    }

    /// The URL prefix of the static files manage serves, if it serves any.
    pub fn static_prefix(&self) -> Option<&str> {
        self.statics.as_ref().map(|s| s.url.as_str())
    }

    pub(super) fn pending_migrations(&self) -> Pending {
        self.migrations
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default()
    }
}

/// The snapshot for a request: waits (up to `hold`) while runserver is
/// still reading the project, as a request waits during a build.
pub(super) async fn current(snapshots: &mut Snapshots, hold: Duration) -> Option<Arc<ProxyConfig>> {
    let wait = snapshots.wait_for(|s| s.is_some());
    match tokio::time::timeout(hold, wait).await {
        Ok(Ok(config)) => config.clone(),
        _ => None,
    }
}
