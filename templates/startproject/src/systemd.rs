//! Telling systemd how the process is, as a `Type=notify` unit expects:
//! `READY=1` once the socket is bound and the database answers, and
//! `WATCHDOG=1` at half of `WATCHDOG_USEC` for as long as the runtime runs
//! tasks, so that systemd kills and restarts an instance that hangs (a
//! deadlock, a stuck runtime) while it still holds its socket. Outside
//! systemd (no `NOTIFY_SOCKET`) both do nothing.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::db::Db;

/// Sends `READY=1` once the database answers (checked every 250 ms).
pub fn notify_when_ready(db: Db) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut waited = false;
        while !db.is_ready().await {
            if !waited {
                tracing::warn!("waiting for the database before telling systemd READY=1");
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if let Err(err) = sd_notify::notify(false, &[NotifyState::Ready]) {
            tracing::warn!("cannot tell systemd READY=1: {err}");
        }
    });
}

/// Feeds the watchdog from a task of the runtime: when the runtime stops
/// running tasks, the pings stop and systemd restarts the instance.
pub fn keep_watchdog_fed() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec) / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(err) = sd_notify::notify(false, &[NotifyState::Watchdog]) {
                tracing::warn!("cannot feed systemd's watchdog: {err}");
            }
        }
    });
}
