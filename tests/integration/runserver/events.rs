//! `manage runserver --events`: one JSON object per line, in the order
//! things happen, to a file, stdout or a FIFO; never a change to watch,
//! and a reader that goes away costs the events only.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::fixtures::echo_app;
use crate::support::runserver::{Start, REBUILD};
use crate::support::{eventually, get, manage, mkfifo};

/// The events' names, in order.
fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn a_start_an_edit_and_a_stop_are_told_in_order_on_stdout() {
    let (tmp, dir) = echo_app();
    let mut cmd = manage();
    cmd.current_dir(&dir)
        .env("CARGO_TARGET_DIR", tmp.path().join("target"))
        .args(["runserver", "127.0.0.1:0", "--events", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Not `Running::start`, which discards stdout; killed by group all
    // the same when the test ends.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = crate::support::Running {
        child: cmd.spawn().unwrap(),
        stderr: std::sync::mpsc::channel().1,
    };
    let stdout = child.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut until = |name: &str| loop {
        let event = rx
            .recv_timeout(REBUILD)
            .unwrap_or_else(|_| panic!("no {name} event; saw {:?}", names(&seen)));
        let done = event["event"] == name;
        seen.push(event);
        if done {
            return seen.last().unwrap().clone();
        }
    };
    let serving = until("serving");
    let addr = serving["addr"].as_str().unwrap().to_owned();
    assert_eq!(serving["bin"], "echo-app", "{serving}");
    assert_eq!(serving["url"], format!("http://{addr}/"), "{serving}");
    let swapped = until("swapped");
    assert_eq!(get(&addr, "/version").unwrap().text(), "v1");
    until("reload-sent");

    let main = dir.join("src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        text.replace(
            "const VERSION: &str = \"v1\";",
            "const VERSION: &str = \"v2\";",
        ),
    )
    .unwrap();
    let change = until("change");
    assert_eq!(
        change["code"],
        serde_json::json!(["src/main.rs"]),
        "{change}"
    );
    let second = until("swapped");
    // The swap is written once the proxy acts on it.
    assert_eq!(get(&addr, "/version").unwrap().text(), "v2");
    assert_ne!(second["pid"], swapped["pid"]);
    assert_eq!(second["restarted"], true, "{second}");
    let reload = until("reload-sent");
    assert_eq!(reload["kind"], "reload", "{reload}");
    assert_eq!(reload["generation"], 2, "{reload}");

    child.signal(libc::SIGTERM);
    until("stopped");
    assert!(child
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    let order = names(&seen);
    let position = |name: &str, from: usize| {
        from + order[from..]
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no {name} after {from} in {order:?}"))
    };
    // The first cycle, then the edit's, then the stop.
    let mut at = 0;
    for name in [
        "listening",
        "serving",
        "build-started",
        "build-finished",
        "app-started",
        "app-ready",
        "swapped",
        "change",
        "build-started",
        "build-finished",
        "app-started",
        "app-ready",
        "swapped",
        "stopping",
        "stopped",
    ] {
        at = position(name, at) + 1;
    }
    assert_eq!(
        order.last().map(String::as_str),
        Some("stopped"),
        "{order:?}"
    );
    // Times only grow.
    let times: Vec<u64> = seen.iter().map(|e| e["ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn an_events_file_in_the_project_is_never_taken_for_a_change() {
    let server = Start::new(echo_app()).events_at("events.jsonl").ready();
    assert!(server.dir.join("events.jsonl").is_file());
    // Each event would be a change (no build reads the file: a reload),
    // whose events would be changes again.
    let quiet = |what: &str| {
        let changes = server.count_within("change", Duration::from_secs(2));
        assert_eq!(
            changes,
            0,
            "{what}: the events file was taken for a change: {}",
            server.events_text()
        );
    };
    quiet("after the start");
    server.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    server.wait_swapped(REBUILD);
    server.skip_events();
    quiet("after a swap");
}

#[test]
fn bad_event_paths_are_refused_at_once() {
    let (tmp, dir) = echo_app();
    let fifo = tmp.path().join("no-reader");
    mkfifo(&fifo);
    for (path, says) in [
        (fifo.display().to_string(), "a FIFO that nothing reads yet"),
        (tmp.path().display().to_string(), "it is a directory"),
        (
            tmp.path()
                .join("missing/events.jsonl")
                .display()
                .to_string(),
            "No such file or directory",
        ),
    ] {
        let out = assert_cmd::Command::from_std({
            let mut cmd = manage();
            cmd.current_dir(&dir)
                .env("CARGO_TARGET_DIR", tmp.path().join("target"))
                .args(["runserver", "127.0.0.1:0", "--events", &path]);
            cmd
        })
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path}: {stderr}");
        assert!(stderr.contains("cannot write events to"), "{stderr}");
        assert!(stderr.contains(says), "{path}: {stderr}");
        assert!(stderr.contains("help:"), "{stderr}");
    }
}

#[test]
fn a_reader_that_goes_away_costs_the_events_not_the_server() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (tmp, dir) = echo_app();
    let fifo = tmp.path().join("events");
    mkfifo(&fifo);
    // The reader's end is open before manage starts (else manage refuses).
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut cmd = manage();
    cmd.current_dir(&dir)
        .env("CARGO_TARGET_DIR", tmp.path().join("target"))
        .args(["runserver", "127.0.0.1:0", "--events"])
        .arg(&fifo);
    let proc = crate::support::Running::start(cmd);
    // It takes the first event and leaves.
    let mut first = Vec::new();
    let got = eventually(Duration::from_secs(60), || {
        let mut chunk = [0u8; 4096];
        match reader.read(&mut chunk) {
            Ok(n) => first.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the FIFO: {e}"),
        }
        first.contains(&b'\n').then_some(())
    });
    assert!(got.is_some(), "no event through the FIFO");
    drop(reader);
    let line = first.split(|&b| b == b'\n').next().unwrap();
    let listening: Value = serde_json::from_slice(line).unwrap();
    assert_eq!(listening["event"], "listening", "{listening}");
    let addr = listening["addr"].as_str().unwrap().to_owned();
    // The next event finds nobody: one warning ...
    proc.wait_for_line("cannot write events to", REBUILD);
    // ... and the server goes on.
    let served = eventually(REBUILD, || {
        get(&addr, "/version").ok().filter(|r| r.text() == "v1")
    });
    assert!(
        served.is_some(),
        "the server stopped with its events reader"
    );
}
