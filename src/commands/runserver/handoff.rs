//! The socket hand-off: manage binds a listening socket for each new app
//! and passes it the way systemd and `systemfd` do, as fd 3 with
//! `LISTEN_FDS=1` and `LISTEN_PID` set to the app's own pid.
//!
//! An app that takes the socket (the scaffold, `listenfd`, anything built
//! for socket activation) is reachable the moment it calls `accept`: no
//! port to poll, no race for a free port. A new build gets a new socket;
//! the old app keeps its own until it is drained.
//!
//! `LISTEN_PID` must name the process that reads it, which exists only
//! after the fork. Setting an environment variable between fork and exec
//! is not async-signal-safe (it allocates), so the environment is built
//! before the fork with room for the digits, and the last step before exec
//! writes the pid into that buffer and calls `execve` itself.

use std::ffi::{CString, OsString};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context as _, Result};

/// The fd systemd's protocol passes the first socket as.
const FIRST_FD: RawFd = 3;
const PID_VAR: &[u8] = b"LISTEN_PID=";

/// A listening socket made for one app, until it is passed on.
pub struct Handoff {
    listener: std::net::TcpListener,
    pub passed: Passed,
}

/// What manage remembers of a passed socket.
#[derive(Debug, Clone, Copy)]
pub struct Passed {
    pub addr: SocketAddr,
    /// The socket's inode, as `/proc/net/tcp` lists it.
    pub inode: u64,
}

impl Handoff {
    /// A fresh listening socket on a free loopback port.
    pub fn bind() -> Result<Handoff> {
        let mut listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("cannot open a listening socket for the app")?;
        if listener.as_raw_fd() < FIRST_FD {
            // manage was started with a standard stream closed: the child's
            // stdio setup would overwrite this fd. A clone lands on fd >= 3.
            listener = listener
                .try_clone()
                .context("cannot move the app's socket")?;
        }
        let addr = listener.local_addr()?;
        // SAFETY: fstat on a descriptor we own, into a zeroed struct.
        let inode = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            if libc::fstat(listener.as_raw_fd(), &mut stat) != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("cannot inspect the app's socket");
            }
            stat.st_ino
        };
        Ok(Handoff {
            listener,
            passed: Passed { addr, inode },
        })
    }

    /// Makes `cmd` run `exe` with `env` (plus `LISTEN_FDS`/`LISTEN_PID`)
    /// and this socket as fd 3. Must be the last `pre_exec` step: it execs.
    /// Keep `self` alive until the command has been spawned.
    pub fn install(
        &self,
        cmd: &mut tokio::process::Command,
        exe: &Path,
        args: &[String],
        env: Vec<(OsString, OsString)>,
    ) -> Result<()> {
        let mut exec = Exec::new(exe, args, env, self.listener.as_raw_fd())?;
        // SAFETY: the closure only writes into memory it owns and calls
        // getpid, fcntl, dup2 and execve, all async-signal-safe.
        unsafe {
            cmd.pre_exec(move || exec.run());
        }
        Ok(())
    }
}

/// Everything `execve` needs, prepared before the fork.
struct Exec {
    path: CString,
    _argv: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    /// `LISTEN_PID=` and room for the digits and the NUL.
    pid_var: Box<[u8; 32]>,
    envp: Vec<*const libc::c_char>,
    fd: RawFd,
}

// SAFETY: the raw pointers point into the CStrings and the box owned by
// the same struct, which never change after construction.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

impl Exec {
    fn new(exe: &Path, args: &[String], env: Vec<(OsString, OsString)>, fd: RawFd) -> Result<Exec> {
        let cstring = |bytes: &[u8]| {
            CString::new(bytes).with_context(|| {
                format!(
                    "`{}` contains a NUL byte and cannot be passed to the app",
                    String::from_utf8_lossy(bytes)
                )
            })
        };
        let path = cstring(exe.as_os_str().as_bytes())?;
        let mut argv_owned = vec![path.clone()];
        for arg in args {
            argv_owned.push(cstring(arg.as_bytes())?);
        }
        let mut env_owned = Vec::new();
        for (key, value) in env {
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            env_owned.push(cstring(&entry)?);
        }
        env_owned.push(cstring(b"LISTEN_FDS=1")?);
        let mut pid_var = Box::new([0u8; 32]);
        pid_var[..PID_VAR.len()].copy_from_slice(PID_VAR);
        let mut argv: Vec<*const libc::c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env_owned.iter().map(|e| e.as_ptr()).collect();
        envp.push(pid_var.as_ptr().cast());
        envp.push(std::ptr::null());
        Ok(Exec {
            path,
            _argv: argv_owned,
            argv,
            _env: env_owned,
            pid_var,
            envp,
            fd,
        })
    }

    /// Runs in the child between fork and exec; returns only on failure.
    fn run(&mut self) -> std::io::Result<()> {
        // SAFETY: async-signal-safe calls on memory this struct owns.
        unsafe {
            write_pid(&mut self.pid_var[PID_VAR.len()..], libc::getpid());
            let moved = if self.fd == FIRST_FD {
                // dup2 onto itself would keep close-on-exec set.
                libc::fcntl(FIRST_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(self.fd, FIRST_FD)
            };
            if moved == -1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
        }
        Err(std::io::Error::last_os_error())
    }
}

/// Writes `pid` in decimal and a NUL into `out`, without allocating.
fn write_pid(out: &mut [u8], pid: libc::pid_t) {
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    out[..len].copy_from_slice(&digits[start..]);
    out[len] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_written_in_place() {
        let mut buf = [b'x'; 21];
        write_pid(&mut buf, 4_194_304);
        assert_eq!(&buf[..8], b"4194304\0");
        write_pid(&mut buf, 7);
        assert_eq!(&buf[..2], b"7\0");
    }
}
