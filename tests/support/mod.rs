//! What the test modules share: running manage, generated projects,
//! processes and HTTP on loopback (here), the validators and machines of
//! the deploy tests (`deploy`), a running dev server (`runserver`) and the
//! projects it serves (`fixtures`).
//!
//! Both tiers (`tests/integration/`, `tests/live/`) include this module and
//! each uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod debian;
pub mod deploy;
pub mod docker;
pub mod fixtures;
pub mod migrations;
pub mod postgres;
mod procs;
pub mod runserver;

pub use self::procs::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;

/// `manage` with colour off and a clean environment for its settings.
pub fn manage() -> Command {
    let mut cmd = Command::cargo_bin("manage").expect("the manage binary is built");
    cmd.env_remove("NO_COLOR").env("TERM", "dumb");
    cmd
}

/// One target directory for every generated project in this test run, so
/// hyper and tokio compile once.
pub fn shared_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("generated-projects")
}

/// `cargo` for a generated project, building into the shared target dir.
pub fn cargo(project: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd
}

/// Every file below `root` (relative, sorted, `/`-separated), for snapshots
/// and for "the disk is as it was" checks.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A process that is killed (its whole group) when the test ends.
pub struct Running {
    pub child: Child,
    pub stderr: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `cmd` in its own process group, capturing stderr line by line.
    pub fn start(mut cmd: Command) -> Running {
        use std::os::unix::process::CommandExt;
        cmd.stderr(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, stderr: rx }
    }

    /// Waits for a stderr line containing `needle`, returning it; panics
    /// with everything seen after `timeout`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; stderr was:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on a pid we own.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads `stream` until the peer closes it (its end, or a reset) and
/// returns how many bytes came. Fails, naming what was read, when more than
/// `limit` bytes arrive, when the whole takes longer than `within`, or when
/// one read waits 10 s for data: the connection was left open.
pub fn read_until_closed(
    stream: &mut TcpStream,
    limit: u64,
    within: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("still sending after {within:?} ({read} bytes)"));
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_secs(10))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(read),
            Ok(n) => read += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(read),
            Err(e) => return Err(format!("still open after {read} bytes: {e}")),
        }
        if read > limit {
            return Err(format!("{read} bytes and still sending"));
        }
    }
}

/// Sends a raw request (`Connection: close` is added) and reads the whole
/// response. Errors are returned, not panicked, so pollers can count them.
pub fn request(addr: &str, raw_head: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(raw_head.as_bytes())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    parse_response(&buf)
}

/// POSTs an urlencoded `form` (`body=some+text`) to `path`.
pub fn post_form(addr: &str, path: &str, form: &str) -> std::io::Result<Response> {
    request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

pub fn get(addr: &str, path: &str) -> std::io::Result<Response> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

/// `GET path` with `extra` header lines (each ending in `\r\n`).
pub fn get_with(addr: &str, path: &str, extra: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
    )
    .unwrap()
}

/// `GET path` as a browser asks for a page.
pub fn html_get(addr: &str, path: &str) -> Response {
    get_with(addr, path, "Accept: text/html,application/xhtml+xml\r\n")
}

fn parse_response(buf: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let raw_body = &buf[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago, for programs that cannot
/// bind port 0 and say where they are; `manage runserver` can (see
/// [`runserver::Start`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Generates a project named `name` in a fresh temp dir with the real binary.
pub fn generate(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", name])
        .assert()
        .success();
    let dir = tmp.path().join(name);
    (tmp, dir)
}

/// Builds a generated project's binary (debug) and returns its path.
pub fn build_project(dir: &Path, name: &str) -> PathBuf {
    let out = cargo(dir)
        .args(["build", "--quiet"])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    shared_target_dir().join("debug").join(name)
}

/// Makes a FIFO at `path` (reading it blocks until a writer comes).
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}
