//! The one harness for `manage runserver`: it starts on `127.0.0.1:0`,
//! learns the address and everything that happens from `--events` (a
//! JSON-lines file in a temp dir of its own, outside what runserver watches),
//! keeps every stderr line for the messages tests look back at, and kills
//! what it started by id when the test ends, passed or failed. [`Poller`]
//! counts failed requests while a test edits.

mod pages;
mod poller;
mod processes;

use std::cell::{Cell, RefCell};
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use self::poller::{Polled, Poller};
pub use self::processes::{comm, processes_running};
use super::{alive, get, manage, shared_target_dir, Running};

/// The first build in a test run compiles hyper and tokio; later ones wait
/// for cargo's lock while other tests build.
pub const FIRST_BUILD: Duration = Duration::from_secs(600);
pub const REBUILD: Duration = Duration::from_secs(180);

/// runserver in a fresh scaffold named `name`, once it serves. Its
/// migrations are applied first (`--migrate`): pages of a project with
/// unapplied migrations carry runserver's banner about them, which only
/// the database tests are about (they use [`Start`] themselves).
pub fn start_scaffold(name: &str, extra: &[&str]) -> Session {
    Start::new(super::generate(name))
        .shared_target()
        .args(&["--migrate"])
        .args(extra)
        .ready()
}

/// runserver on the std-only echo app, once it serves.
pub fn start_echo() -> Session {
    Start::new(super::fixtures::echo_app()).ready()
}

/// The events that end a build-and-start cycle.
pub const OUTCOMES: [&str; 6] = [
    "swapped",
    "unchanged",
    "build-failed",
    "not-ready",
    "rolled-back",
    "error",
];

/// How to start runserver in a project.
pub struct Start {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    cmd: Command,
    /// manage's own options, before `runserver`.
    global: Vec<String>,
    /// Where runserver listens: `127.0.0.1:0` unless [`Start::addr`].
    addr: String,
    args: Vec<String>,
    exes: Vec<String>,
    /// `--events` as given (relative to the project), when not in a temp
    /// dir of the session's own.
    events_at: Option<String>,
    /// `CARGO_TARGET_DIR`.
    target: PathBuf,
}

impl Start {
    /// runserver in `project` (a temp dir and the project inside it) on
    /// `127.0.0.1:0`, building into a target directory of its own in the
    /// temp dir. Copies of one fixture share a package name, and cargo
    /// hashes a path package by its path relative to the workspace, so in
    /// one target dir a copy's build can be "fresh" with another copy's
    /// sources, or its executable replaced by another's; std-only
    /// fixtures build in a second anyway.
    pub fn new((tmp, dir): (tempfile::TempDir, PathBuf)) -> Start {
        let mut cmd = manage();
        cmd.current_dir(&dir);
        let target = tmp.path().join("target");
        Start {
            target,
            tmp,
            dir,
            cmd,
            global: Vec::new(),
            addr: "127.0.0.1:0".to_owned(),
            args: Vec::new(),
            exes: Vec::new(),
            events_at: None,
        }
    }

    /// Builds into the shared target directory, for the scaffold (whose
    /// dependencies take minutes to build): a name of its own per test.
    pub fn shared_target(mut self) -> Start {
        self.target = shared_target_dir();
        self
    }

    /// runserver's arguments.
    pub fn args(mut self, args: &[&str]) -> Start {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Where runserver listens instead of `127.0.0.1:0` (port 0 still:
    /// the session reads the port from the `serving` event).
    pub fn addr(mut self, addr: &str) -> Start {
        self.addr = addr.to_owned();
        self
    }

    /// manage's options before the subcommand (`-q`, `-v`).
    pub fn global(mut self, args: &[&str]) -> Start {
        self.global.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Start {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Start {
        self.cmd.env_remove(key);
        self
    }

    /// Anything else about the command (a resource limit, say).
    pub fn command(mut self, f: impl FnOnce(&mut Command)) -> Start {
        f(&mut self.cmd);
        self
    }

    /// The app's executables (file names), to find its processes wherever
    /// they were reparented, and to kill them if manage did not.
    pub fn exes(mut self, exes: &[&str]) -> Start {
        self.exes = exes.iter().map(|e| e.to_string()).collect();
        self
    }

    /// `--events path` (relative to the project) instead.
    pub fn events_at(mut self, path: &str) -> Start {
        self.events_at = Some(path.to_owned());
        self
    }

    /// Starts runserver and waits until it listens.
    pub fn spawn(mut self) -> Session {
        // A directory of its own: a second session in the same project
        // must never read the first one's events.
        let events_dir = tempfile::tempdir().unwrap();
        let events = match &self.events_at {
            Some(path) => self.dir.join(path),
            None => events_dir.path().join("events.jsonl"),
        };
        self.cmd
            .env("CARGO_TARGET_DIR", &self.target)
            .args(&self.global)
            .arg("runserver")
            .arg(&self.addr)
            .arg("--events");
        match &self.events_at {
            Some(given) => self.cmd.arg(given),
            None => self.cmd.arg(&events),
        };
        // Last: they may end in `-- APP_ARGS`.
        self.cmd.args(&self.args);
        let proc = Running::start(self.cmd);
        let mut session = Session {
            _tmp: self.tmp,
            dir: self.dir,
            addr: String::new(),
            proc,
            exes: self.exes,
            target: self.target,
            log: RefCell::new(Vec::new()),
            events_path: events,
            _events_dir: events_dir,
            events: RefCell::new(Vec::new()),
            read: Cell::new(0),
            partial: RefCell::new(Vec::new()),
            cursor: Cell::new(0),
        };
        // The address is held (the project may not be read yet).
        let serving = session.wait_event("listening", Duration::from_secs(60));
        let port = serving["addr"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {serving}"));
        session.addr = format!("127.0.0.1:{port}");
        session
    }

    /// [`Start::spawn`], then waits until the first build serves.
    pub fn ready(self) -> Session {
        let session = self.spawn();
        session.wait_swapped(FIRST_BUILD);
        session
    }
}

/// A running `manage runserver`.
pub struct Session {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    /// manage's own address, where the app is served.
    pub addr: String,
    pub proc: Running,
    /// The app's executables, from [`Start::exes`].
    pub exes: Vec<String>,
    /// Where they are built.
    pub target: PathBuf,
    log: RefCell<Vec<String>>,
    events_path: PathBuf,
    _events_dir: tempfile::TempDir,
    /// Every event read so far, and how far into the file that is.
    events: RefCell<Vec<Value>>,
    read: Cell<u64>,
    partial: RefCell<Vec<u8>>,
    /// Events before this index are behind the test.
    cursor: Cell<usize>,
}

impl Session {
    /// Reads the events written since the last look.
    fn pump_events(&self) {
        let Ok(mut file) = fs::File::open(&self.events_path) else {
            return;
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.read.get())).is_err()
            || file.read_to_end(&mut bytes).is_err()
        {
            return;
        }
        self.read.set(self.read.get() + bytes.len() as u64);
        let mut partial = self.partial.borrow_mut();
        partial.extend_from_slice(&bytes);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap_or_else(|err| {
                panic!(
                    "an event line is not JSON ({err}): {:?}",
                    String::from_utf8_lossy(&line)
                )
            });
            self.events.borrow_mut().push(event);
        }
    }

    /// Every event so far, one per line, for failure messages.
    pub fn events_text(&self) -> String {
        self.pump_events();
        self.events
            .borrow()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.pump_events();
        self.events.borrow().clone()
    }

    /// How many events are behind the test.
    pub fn cursor(&self) -> usize {
        self.cursor.get()
    }

    /// From now on, only events that come after this call count.
    pub fn skip_events(&self) {
        self.pump_events();
        self.cursor.set(self.events.borrow().len());
    }

    /// Waits for the next event (after the cursor) whose name is in
    /// `names`, moves the cursor past it and returns it. Panics with the
    /// events and manage's stderr after `timeout`, or if manage exits.
    pub fn wait_any(&self, names: &[&str], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_events();
            let found = {
                let events = self.events.borrow();
                events[self.cursor.get()..]
                    .iter()
                    .position(|e| names.iter().any(|n| e["event"] == *n))
                    .map(|i| (self.cursor.get() + i, events[self.cursor.get() + i].clone()))
            };
            if let Some((index, event)) = found {
                self.cursor.set(index + 1);
                return event;
            }
            let exited = !alive(self.proc.pid());
            if exited || Instant::now() > deadline {
                // Its last words may still be on their way.
                std::thread::sleep(Duration::from_millis(200));
                self.pump_events();
                panic!(
                    "no event of {names:?} {}; events:\n{}\nmanage's stderr:\n{}",
                    if exited {
                        "before manage exited".to_owned()
                    } else {
                        format!("within {timeout:?}")
                    },
                    self.events_text(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_event(&self, name: &str, timeout: Duration) -> Value {
        self.wait_any(&[name], timeout)
    }

    /// Waits for the end of the next cycle and checks it is `outcome`.
    pub fn expect_outcome(&self, outcome: &str, timeout: Duration) -> Value {
        let event = self.wait_any(&OUTCOMES, timeout);
        assert_eq!(
            event["event"],
            outcome,
            "the cycle ended in {event}, not {outcome}; events:\n{}\nmanage's stderr:\n{}",
            self.events_text(),
            self.log_text()
        );
        event
    }

    /// Waits until a new build serves.
    pub fn wait_swapped(&self, timeout: Duration) -> Value {
        self.expect_outcome("swapped", timeout)
    }

    /// Moves the stderr lines that arrived into the log; returns the new ones.
    pub fn pump(&self) -> Vec<String> {
        let new: Vec<String> = self.proc.stderr.try_iter().collect();
        self.log.borrow_mut().extend(new.iter().cloned());
        new
    }

    pub fn log_text(&self) -> String {
        self.pump();
        self.log.borrow().join("\n")
    }

    /// stderr lines seen so far containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.pump();
        self.log
            .borrow()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits until a stderr line contains `needle` (for what only the
    /// terminal says: the app's own output, notes); panics with the log.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            self.pump();
            if let Some(line) = self.log.borrow()[checked..]
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            checked = self.log.borrow().len();
            assert!(
                Instant::now() < deadline,
                "no line containing {needle:?} within {timeout:?}; manage's stderr:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until GET / at manage's address answers 200 with `text`.
    /// Panics early, with manage's output, when a cycle ends in anything
    /// but a swap or the app exits, or manage exits.
    pub fn wait_served(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no response yet");
        let from = self.cursor.get();
        loop {
            self.pump_events();
            let hopeless = self.events.borrow()[from..]
                .iter()
                .find(|e| {
                    [
                        "build-failed",
                        "not-ready",
                        "rolled-back",
                        "app-exited",
                        "error",
                    ]
                    .iter()
                    .any(|n| e["event"] == *n)
                })
                .cloned();
            if let Some(event) = hopeless {
                panic!(
                    "waiting for {text:?}: {event}; last response: {last}; manage's stderr:\n{}",
                    self.log_text()
                );
            }
            assert!(
                alive(self.proc.pid()),
                "manage exited while waiting for {text:?}; its stderr:\n{}",
                self.log_text()
            );
            match get(&self.addr, "/") {
                Ok(r) if r.status == 200 && r.text().contains(text) => {
                    self.settle(from);
                    return;
                }
                Ok(r) => last = format!("{} {:?}", r.status, r.text()),
                Err(e) => last = e.to_string(),
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} not served within {timeout:?}; last response: {last}; events:\n{}\nmanage's stderr:\n{}",
                self.events_text(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The proxy answers from a new app a moment before its `swapped`
    /// event is written: when a cycle started after event `from` has a
    /// ready app but no outcome yet, waits for the outcome, so that an `edit` made next
    /// does not take that outcome for its own.
    fn settle(&self, from: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            self.pump_events();
            let open = {
                let events = self.events.borrow();
                let tail = &events[from.min(events.len())..];
                let started = tail.iter().rposition(|e| e["event"] == "build-started");
                let ended = tail
                    .iter()
                    .rposition(|e| OUTCOMES.iter().any(|n| e["event"] == *n));
                let ready = tail.iter().rposition(|e| e["event"] == "app-ready");
                match (started, ready) {
                    (Some(s), Some(r)) if r > s => ended.is_none_or(|e| e < s),
                    _ => false,
                }
            };
            if !open {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Replaces the first `from` in `rel` by `to`; events from before the
    /// edit no longer count.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.dir.join(rel);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel} has no {from:?}");
        self.skip_events();
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// How many `name` events come within `window` from now (after the
    /// cursor): for what must not happen, a window is all a test can give.
    pub fn count_within(&self, name: &str, window: Duration) -> usize {
        std::thread::sleep(window);
        self.events()[self.cursor()..]
            .iter()
            .filter(|e| e["event"] == name)
            .count()
    }

    /// Stops runserver as Ctrl-C does and hands the project back, for
    /// another start in the same directory.
    pub fn stop(mut self) -> (tempfile::TempDir, PathBuf) {
        self.proc.signal(libc::SIGTERM);
        self.proc
            .wait_exit(Duration::from_secs(30))
            .expect("runserver exits on SIGTERM");
        self.exes.clear();
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::mem::take(&mut self.dir);
        (std::mem::replace(&mut self._tmp, tmp), dir)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // manage normally takes the app down with it; this is for a test
        // that failed half-way, or a manage that did not.
        if !self.exes.is_empty() {
            for pid in self.app_processes() {
                // SAFETY: kill(2) on a process this test started through manage.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // `Running`'s own drop then kills manage's process group.
    }
}
