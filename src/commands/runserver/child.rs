//! The app process: spawn (with a passed socket and `HOST`/`PORT`), crash
//! reports, graceful stop.
//!
//! Each child runs in its own process group, so a stop reaches everything
//! it started, and with `PR_SET_PDEATHSIG` on Linux, so it dies with manage
//! even when manage is killed with SIGKILL. Its stdout and stderr are passed
//! to the terminal line by line as they are written; the last lines of
//! stderr are kept for the crash report.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::handoff::{Handoff, Passed};
use super::process::{isolate, signal_group};
use super::reaper::Reaper;
use crate::ui::Ui;

/// How many lines of a child's stderr a crash report shows.
const TAIL_LINES: usize = 20;

/// A process group manage started: the reaper knows it while it lives,
/// and dropping this kills whatever is left in it.
pub struct Group {
    pgid: i32,
    reaper: Reaper,
}

impl Group {
    pub fn watch(reaper: &Reaper, pgid: i32) -> Group {
        reaper.watch(pgid);
        Group {
            pgid,
            reaper: reaper.clone(),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        signal_group(self.pgid, libc::SIGKILL);
        self.reaper.forget(self.pgid);
    }
}

/// A running app process.
pub struct Child {
    pid: i32,
    /// The app's process group; dropped last, so what the app started goes
    /// with it.
    _group: Group,
    /// `$HOST:$PORT` as the app was told.
    pub port: SocketAddr,
    /// The socket passed as fd 3.
    pub passed: Passed,
    exit: watch::Receiver<Option<ExitStatus>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// How a child ended, with the last lines of its output (stderr and
/// stdout as they came: some frameworks, Rocket among them, print their
/// errors on stdout).
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: ExitStatus,
    pub output_tail: Vec<String>,
}

impl Exit {
    /// "exit status 101" or "killed by signal 11 (SIGSEGV)".
    pub fn describe(&self) -> String {
        describe_status(self.status)
    }
}

pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        format!("killed by signal {sig} ({})", signal_name(sig))
    } else {
        status.to_string()
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

/// A free loopback port for the next child. The proxy, not the user, is
/// the only one that ever connects to it.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free loopback port for the app")?;
    Ok(listener.local_addr()?.port())
}

/// Set to `off` for the app unless the user set it: generated apps then
/// leave the per-request lines to manage (one line per request, not two).
const ACCESS_LOG: &str = "ACCESS_LOG";

/// Variables an app must not inherit from manage's own environment: the
/// socket-activation ones describe manage's sockets, not the app's, and
/// the address ones are set for the app below.
const NOT_INHERITED: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "HOST",
    "PORT",
    "ROCKET_ADDRESS",
    "ROCKET_PORT",
    "BINDING",
];

impl Child {
    /// Starts `exe` with a passed listening socket (fd 3, `LISTEN_FDS`)
    /// and, for apps that read them, `HOST`/`PORT` naming another free
    /// loopback port.
    pub fn spawn(
        exe: &Path,
        args: &[String],
        cwd: &Path,
        ui: &Ui,
        reaper: &Reaper,
    ) -> Result<Child> {
        let handoff = Handoff::bind()?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| !NOT_INHERITED.iter().any(|n| k == *n))
            .collect();
        env.push(("HOST".into(), "127.0.0.1".into()));
        env.push(("PORT".into(), port.to_string().into()));
        // The same address under the names frameworks read by default
        // (Rocket; Loco reads PORT and BINDING), so they swap with no pause
        // and never reach for manage's own address.
        env.push(("ROCKET_ADDRESS".into(), "127.0.0.1".into()));
        env.push(("ROCKET_PORT".into(), port.to_string().into()));
        env.push(("BINDING".into(), "127.0.0.1".into()));
        // manage prints a line per request itself; a scaffolded app drops
        // its own access lines on ACCESS_LOG=off (unless the user set it).
        if !env.iter().any(|(k, _)| k == ACCESS_LOG) {
            env.push((ACCESS_LOG.into(), "off".into()));
        }
        let mut cmd = tokio::process::Command::new(exe);
        cmd.current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        isolate(&mut cmd);
        // Last: it execs.
        handoff.install(&mut cmd, exe, args, env)?;
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start `{}`", exe.display()))?;
        let passed = handoff.passed;
        // The app has its copy; manage's would keep the socket listening
        // after the app is gone.
        drop(handoff);
        let pid = child.id().context("the app exited at once")? as i32;
        let group = Group::watch(reaper, pid);

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let out_ui = ui.clone();
        let out_pump = tokio::spawn(pump(stdout, Some(tail.clone()), move |line| {
            out_ui.child_stdout(line)
        }));
        let err_ui = ui.clone();
        let err_pump = tokio::spawn(pump(stderr, Some(tail.clone()), move |line| {
            err_ui.raw_bytes(line)
        }));

        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            // Let the last lines of output arrive before reporting the exit.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                let _ = out_pump.await;
                let _ = err_pump.await;
            })
            .await;
            let status = status.unwrap_or_else(|_| {
                use std::os::unix::process::ExitStatusExt;
                ExitStatus::from_raw(libc::SIGKILL)
            });
            let _ = exit_tx.send(Some(status));
        });

        Ok(Child {
            pid,
            _group: group,
            port: addr,
            passed,
            exit: exit_rx,
            tail,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Changes when the process ends.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// The exit, if the process has ended.
    pub fn exit_now(&self) -> Option<Exit> {
        (*self.exit.borrow()).map(|status| Exit {
            status,
            output_tail: self.tail(),
        })
    }

    /// Resolves when the process ends (however that happens).
    pub fn exited(&self) -> impl std::future::Future<Output = Exit> + Send + 'static {
        let mut rx = self.exit.clone();
        let tail = self.tail.clone();
        async move {
            let status = loop {
                if let Some(status) = *rx.borrow_and_update() {
                    break status;
                }
                if rx.changed().await.is_err() {
                    use std::os::unix::process::ExitStatusExt;
                    break ExitStatus::from_raw(libc::SIGKILL);
                }
            };
            Exit {
                status,
                output_tail: tail_of(&tail),
            }
        }
    }

    fn tail(&self) -> Vec<String> {
        tail_of(&self.tail)
    }

    /// SIGTERM to the process group, then SIGKILL after `grace`.
    pub async fn stop(self, grace: Duration) -> Exit {
        signal_group(self.pid, libc::SIGTERM);
        let exited = self.exited();
        tokio::pin!(exited);
        match tokio::time::timeout(grace, &mut exited).await {
            Ok(exit) => {
                // Anything the app left behind in its group goes too.
                signal_group(self.pid, libc::SIGKILL);
                exit
            }
            Err(_) => {
                signal_group(self.pid, libc::SIGKILL);
                exited.await
            }
        }
    }
}

fn tail_of(tail: &Mutex<VecDeque<String>>) -> Vec<String> {
    tail.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Passes a child's output on as it comes, whole lines at a time (all the
/// complete lines of one read in one write, so a busy app's log costs one
/// write per read, not per line), keeping a tail when asked.
async fn pump(
    mut stream: impl AsyncRead + Unpin,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
    mut emit: impl FnMut(&[u8]),
) {
    const LONGEST_LINE: usize = 64 * 1024;
    let mut pending: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        match stream.read_buf(&mut pending).await {
            Ok(0) | Err(_) => {
                if !pending.is_empty() {
                    emit(&pending);
                    keep_tail(&tail, &pending);
                }
                return;
            }
            Ok(_) => {}
        }
        let cut = match pending.iter().rposition(|b| *b == b'\n') {
            Some(last) => last + 1,
            None if pending.len() >= LONGEST_LINE => pending.len(),
            None => continue,
        };
        let rest = pending.split_off(cut);
        emit(&pending);
        keep_tail(&tail, &pending);
        pending = rest;
    }
}

fn keep_tail(tail: &Option<Arc<Mutex<VecDeque<String>>>>, chunk: &[u8]) {
    let Some(tail) = tail else { return };
    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    for line in String::from_utf8_lossy(chunk).lines() {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.trim_end().to_owned());
    }
}
