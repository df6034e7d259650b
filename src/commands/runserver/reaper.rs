//! The reaper: a small process that outlives manage just long enough to
//! end every process group manage started.
//!
//! `PR_SET_PDEATHSIG` takes the app and cargo down with manage, but not
//! what they started: an app's worker or `sleep` child, or rustc under a
//! killed cargo, would live on with PPID 1. So runserver starts a second
//! copy of itself (`manage __reap`) in a process group of its own, and
//! tells it over a pipe which process groups exist (`+PGID`) and which are
//! gone (`-PGID`). However manage ends (even SIGKILL), the kernel closes
//! the pipe; the reaper then kills each group it still knows and exits.

use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use super::process::signal_group;

/// The name of the hidden subcommand the reaper runs as.
pub const SUBCOMMAND: &str = "__reap";

/// manage's end of the pipe to the reaper.
#[derive(Clone)]
pub struct Reaper {
    pipe: Arc<Mutex<Option<std::process::ChildStdin>>>,
}

impl Reaper {
    /// Starts the reaper process.
    pub fn start() -> Result<Reaper> {
        let exe = std::env::current_exe().context("cannot find manage's own executable")?;
        let mut child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(exe)
                .arg(SUBCOMMAND)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Out of the terminal's process group: Ctrl-C is manage's
                // to handle, and the reaper must see it through.
                .process_group(0)
                .spawn()
                .context("cannot start the process reaper")?
        };
        let pipe = child.stdin.take().expect("piped");
        // The reaper exits by itself when the pipe closes; reap it then so
        // it does not linger as a zombie while manage runs on.
        std::thread::spawn(move || child.wait());
        Ok(Reaper {
            pipe: Arc::new(Mutex::new(Some(pipe))),
        })
    }

    /// The process group `pgid` exists: kill it if manage dies.
    pub fn watch(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// The process group `pgid` is gone: forget it (its number may be
    /// reused by an unrelated process).
    pub fn forget(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipe.as_mut() {
            if p.write_all(line.as_bytes()).is_err() {
                // The reaper is gone; nothing more to tell it.
                *pipe = None;
            }
        }
    }
}

/// `manage __reap`: reads `+PGID`/`-PGID` lines until the pipe closes,
/// then kills the groups still listed.
pub fn run() -> Result<()> {
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.parse::<i32>() else {
            continue;
        };
        match sign {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        signal_group(pgid, libc::SIGKILL);
    }
    Ok(())
}
