//! Readiness: where a new app answers, and when.
//!
//! An app may listen in one of four places, and manage tries them all at
//! once rather than guessing from its source:
//! - the passed socket (`LISTEN_FDS`, [`super::handoff`]): one request
//!   waits in its queue and is answered as soon as the app accepts, so
//!   there is nothing to poll;
//! - `$HOST:$PORT`, polled as before (a connect, or the health path);
//! - `--app-addr`, when the user named it (a TCP address or `unix:PATH`);
//! - any other socket the app's processes listen on, TCP or Unix
//!   ([`super::discover`]), taken when it answers HTTP.
//!
//! Waiting has no fixed sleeps: polls start 2 ms apart and back off to
//! 25 ms, and the app's exit ends the wait at once.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::addr::AppAddr;
use super::child::{Child, Exit};
use super::discover;
use crate::ui::Ui;

/// How the app was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// It took the passed socket.
    Passed,
    /// It listens on `$HOST:$PORT`.
    Port,
    /// It listens where `--app-addr` says.
    Configured,
    /// It listens somewhere of its own choosing, found through /proc.
    Discovered,
}

impl Via {
    /// Its name in `--events`.
    pub fn name(self) -> &'static str {
        match self {
            Via::Passed => "socket",
            Via::Port => "port",
            Via::Configured => "app-addr",
            Via::Discovered => "discovered",
        }
    }
}

/// Where a ready app takes requests.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Where the proxy connects.
    pub addr: AppAddr,
    /// Where the app listens, as it bound it (`0.0.0.0:3000`).
    pub local: AppAddr,
    pub via: Via,
}

/// Why a child did not become ready.
#[derive(Debug)]
pub enum NotReady {
    Exited(Exit),
    /// Nothing answered in time; what was tried, for the message.
    TimedOut {
        after: Duration,
        tried: String,
    },
}

/// What to wait for.
pub struct Wait<'a> {
    pub health: Option<&'a str>,
    pub app_addr: Option<AppAddr>,
    pub timeout: Duration,
    /// Shown in the status line of a slow start.
    pub name: &'a str,
}

/// A slow start gets a status line after this long.
const SLOW: Duration = Duration::from_secs(1);

/// Waits until the app answers somewhere, it exits, or the timeout passes.
pub async fn wait(child: &Child, wait: &Wait<'_>, ui: &Ui) -> Result<Ready, NotReady> {
    let start = Instant::now();
    // Its own task, so it runs while the polls below do.
    let mut passed = AbortOnDrop(tokio::spawn(passed_probe(
        child.passed,
        wait.health.map(str::to_owned),
    )));
    let mut exit = child.exit_watch();
    let mut delay = Duration::from_millis(2);
    let mut spinner = None;
    let mut seen = Seen::default();
    loop {
        if let Some(exit) = child.exit_now() {
            return Err(NotReady::Exited(exit));
        }
        if let Some(ready) = poll(child, wait, &mut seen).await {
            return Ok(ready);
        }
        let waited = start.elapsed();
        if waited >= wait.timeout {
            return Err(NotReady::TimedOut {
                after: wait.timeout,
                tried: seen.describe(child, wait),
            });
        }
        if waited >= SLOW {
            let message = format!(
                "Waiting for `{}` to answer · {} s of {} s",
                wait.name,
                waited.as_secs(),
                wait.timeout.as_secs()
            );
            match &spinner {
                None => spinner = Some(ui.spinner(message)),
                Some(s) => s.set_message(message),
            }
        }
        tokio::select! {
            Ok(()) = &mut passed.0 => {
                return Ok(Ready {
                    addr: child.passed.addr.into(),
                    local: child.passed.addr.into(),
                    via: Via::Passed,
                });
            }
            _ = tokio::time::sleep(delay) => {}
            _ = exit.changed() => {}
        }
        delay = (delay * 2).min(Duration::from_millis(25));
    }
}

/// What the polls saw, for a timeout's message.
#[derive(Default)]
struct Seen {
    port: Option<String>,
    configured: Option<String>,
    discovered: Vec<(AppAddr, String)>,
}

impl Seen {
    fn describe(&self, child: &Child, wait: &Wait<'_>) -> String {
        let none = || "nothing listening".to_owned();
        let mut tried = vec![
            format!(
                "$PORT ({}): {}",
                child.port,
                self.port.clone().unwrap_or_else(none)
            ),
            format!(
                "the passed socket (LISTEN_FDS, {}): never accepted a connection",
                child.passed.addr
            ),
        ];
        if let Some(addr) = &wait.app_addr {
            tried.push(format!(
                "--app-addr {addr}: {}",
                self.configured.clone().unwrap_or_else(none)
            ));
        }
        if self.discovered.is_empty() {
            tried.push("its processes' listening sockets: none found".into());
        } else {
            for (addr, what) in &self.discovered {
                tried.push(format!("its listening socket {addr}: {what}"));
            }
        }
        if let Some(path) = wait.health {
            tried.push(format!("health path `{path}` (a 2xx answer is needed)"));
        }
        tried.join("; ")
    }
}

/// One round over the places that need polling.
async fn poll(child: &Child, wait: &Wait<'_>, seen: &mut Seen) -> Option<Ready> {
    let port = AppAddr::Tcp(child.port);
    match answers(&port, wait.health, false).await {
        Ok(()) => {
            return Some(Ready {
                addr: port.clone(),
                local: port,
                via: Via::Port,
            })
        }
        Err(why) => seen.port = Some(why),
    }
    if let Some(addr) = &wait.app_addr {
        match answers(addr, wait.health, false).await {
            Ok(()) => {
                return Some(Ready {
                    addr: addr.clone(),
                    local: addr.clone(),
                    via: Via::Configured,
                })
            }
            Err(why) => seen.configured = Some(why),
        }
    }
    let found = discover::listening(child.pid(), &[child.passed.inode]);
    seen.discovered.clear();
    for socket in found {
        if socket.local.tcp().map(|a| a.port()) == Some(child.port.port()) {
            continue;
        }
        let addr = socket.connect_addr();
        match answers(&addr, wait.health, true).await {
            Ok(()) => {
                return Some(Ready {
                    addr,
                    local: socket.local,
                    via: Via::Discovered,
                })
            }
            Err(why) => seen.discovered.push((socket.local, why)),
        }
    }
    None
}

/// Whether `addr` is ready: the health path answers 2xx, or without one a
/// connect succeeds (or, with `http`, any HTTP answer to `GET /`).
async fn answers(addr: &AppAddr, health: Option<&str>, http: bool) -> Result<(), String> {
    match (health, http) {
        (None, false) => addr
            .connect()
            .await
            .map(drop)
            .map_err(|_| "nothing listening".to_owned()),
        (path, _) => {
            let path = path.unwrap_or("/");
            let attempt = probe(addr, path);
            match tokio::time::timeout(Duration::from_millis(500), attempt).await {
                Ok(Some(code)) if health.is_none() || (200..300).contains(&code) => Ok(()),
                Ok(Some(code)) => Err(format!("answered {code} on `{path}`")),
                Ok(None) => Err("no HTTP answer".to_owned()),
                Err(_) => Err(format!("no answer to `GET {path}` within 500 ms")),
            }
        }
    }
}

/// Resolves once the app answers on the passed socket (a 2xx from the
/// health path, or any HTTP answer without one). The connection is
/// queued by the kernel until the app accepts, so this needs no polling
/// while the app starts; only a non-2xx health answer is retried.
async fn passed_probe(passed: super::handoff::Passed, health: Option<String>) {
    let path = health.as_deref().unwrap_or("/");
    let mut delay = Duration::from_millis(5);
    loop {
        match probe(&AppAddr::Tcp(passed.addr), path).await {
            Some(code) if health.is_none() || (200..300).contains(&code) => return,
            _ => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Aborts the task when the wait ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One `GET path` over a fresh connection: the status code, if any.
async fn probe(addr: &AppAddr, path: &str) -> Option<u16> {
    let mut stream = addr.connect().await.ok()?;
    let host = addr.authority();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: manage-runserver\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.ok()?;
    if !status_line.starts_with("HTTP/") {
        return None;
    }
    status_line.split(' ').nth(1)?.parse().ok()
}
