//! `manage runserver` against real cargo builds of generated projects.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::devserver::{start_echo, DevServer, REBUILD};
use crate::support::{
    self, alive, descendants, eventually, free_port, get, manage, shared_target_dir, Running,
};

fn port_is_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

#[test]
fn edits_are_served_with_zero_failed_requests() {
    let server = DevServer::start("rs-edit", &[]);
    assert_eq!(server.title().as_deref(), Some("rs-edit is running"));

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let addr = server.addr.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(600);
            // Bounded in count and time.
            for _ in 0..200_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                match get(&addr, "/") {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => failed.push(format!("status {}", r.status)),
                    Err(e) => failed.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (ok, failed)
        })
    };
    let mut previous = None;
    for i in 1..=3 {
        let next = format!("rs-edit edit {i}");
        server.rename_in_code(previous.as_deref(), &next);
        server.wait_for_title(&format!("{next} is running"));
        previous = Some(next);
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = poller.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed requests: {failed:?}",
        failed.len()
    );
    assert!(ok > 20, "the poller made only {ok} requests");
}

#[test]
fn a_broken_build_keeps_the_old_app_and_a_fix_restores_it() {
    let server = DevServer::start("rs-broken", &[]);
    server.edit("src/main.rs", "fn main() {", "fn main() -> { broken");
    let line = server.proc.wait_for_line("Build failed", REBUILD);
    assert!(line.contains("still serving the previous build"), "{line}");
    assert_eq!(server.title().as_deref(), Some("rs-broken is running"));

    server.edit("src/main.rs", "fn main() -> { broken", "fn main() {");
    server.rename_in_code(None, "fixed");
    server.wait_for_title("fixed is running");
}

#[test]
fn a_build_failure_prints_the_compiler_error() {
    let server = DevServer::start("rs-diag", &[]);
    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    let _x: u32 = \"not a number\";",
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + REBUILD;
    while Instant::now() < deadline {
        match server.proc.stderr.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let done = line.contains("Build failed");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("error[E0308]: mismatched types"), "{text}");
    assert!(text.contains("(1 error)"), "{text}");
    assert!(text.contains("src/main.rs"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour off a terminal: {text:?}"
    );
}

#[test]
fn a_crash_is_reported_and_the_next_edit_recovers() {
    let server = DevServer::start("rs-crash", &[]);
    let children = crate::support::app_descendants(server.proc.pid());
    assert_eq!(children.len(), 1, "one app process: {children:?}");
    // SAFETY: kill(2) on the app process this test started through manage.
    unsafe {
        libc::kill(children[0], libc::SIGKILL);
    }
    server
        .proc
        .wait_for_line("The app exited (killed by signal 9 (SIGKILL))", REBUILD);
    let response = get(&server.addr, "/").unwrap();
    assert_eq!(response.status, 502, "the app died: a bad gateway");
    assert!(
        response.text().contains("the app exited"),
        "{}",
        response.text()
    );

    server.rename_in_code(None, "back");
    server.wait_for_title("back is running");
}

#[test]
fn a_new_build_that_exits_at_start_leaves_the_old_one_serving() {
    let server = DevServer::start("rs-exit", &[]);
    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    eprintln!(\"boom at start\");\n    std::process::exit(3);",
    );
    let line = server.proc.wait_for_line("never became ready", REBUILD);
    assert!(line.contains("exit status 3"), "{line}");
    assert!(line.contains("still serving the previous build"), "{line}");
    server
        .proc
        .wait_for_line("boom at start", Duration::from_secs(5));
    assert_eq!(server.title().as_deref(), Some("rs-exit is running"));
}

#[test]
fn a_save_storm_gives_one_build_and_touches_give_none() {
    let server = DevServer::start("rs-storm", &[]);
    let storm = server.dir.join("src/storm");
    fs::create_dir(&storm).unwrap();
    for i in 0..300 {
        fs::write(storm.join(format!("f{i}.txt")), format!("file {i}")).unwrap();
    }
    server.proc.wait_for_line("Built in", REBUILD);
    // Anything else the storm caused would show within a few seconds.
    let extra = count_lines(&server.proc, "Building", Duration::from_secs(4));
    assert_eq!(extra, 0, "the storm caused more than one build");

    // Saving files without changing them: no build at all.
    for i in 0..300 {
        let path = storm.join(format!("f{i}.txt"));
        fs::write(&path, format!("file {i}")).unwrap();
    }
    server.edit("src/main.rs", "", "");
    let builds = count_lines(&server.proc, "Building", Duration::from_secs(4));
    assert_eq!(builds, 0, "unchanged content was rebuilt");
}

fn count_lines(proc: &Running, needle: &str, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut n = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match proc.stderr.recv_timeout(left) {
            Ok(line) if line.contains(needle) => n += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    n
}

fn child_addr_of(pid: i32) -> Vec<String> {
    crate::support::listening_ports_of(pid)
        .into_iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect()
}

fn assert_all_gone(procs: &[i32], ports: &[String]) {
    let gone = eventually(Duration::from_secs(10), || {
        (procs.iter().all(|&p| !alive(p)) && ports.iter().all(|a| port_is_free(a))).then_some(())
    });
    assert!(
        gone.is_some(),
        "still alive: {:?}; ports still taken: {:?}",
        procs.iter().filter(|&&p| alive(p)).collect::<Vec<_>>(),
        ports
            .iter()
            .filter(|a| !port_is_free(a))
            .collect::<Vec<_>>()
    );
}

#[test]
fn ctrl_c_stops_the_app_gracefully_and_exits_0() {
    let mut server = DevServer::start("rs-stop", &[]);
    let children = descendants(server.proc.pid());
    let mut ports = vec![server.addr.clone()];
    for &c in &children {
        ports.extend(child_addr_of(c));
    }
    assert!(ports.len() >= 2, "the app's port was found: {ports:?}");
    server.proc.signal(libc::SIGINT);
    let status = server
        .proc
        .wait_exit(Duration::from_secs(15))
        .expect("manage exits after Ctrl-C");
    assert!(status.success(), "{status:?}");
    assert_all_gone(&children, &ports);
}

#[test]
fn sigkill_of_manage_leaves_no_orphans() {
    let mut server = DevServer::start("rs-kill", &[]);
    // A build in flight too: its cargo must not survive either.
    server.rename_in_code(None, "killed");
    std::thread::sleep(Duration::from_millis(150));
    let procs = descendants(server.proc.pid());
    let mut ports = vec![server.addr.clone()];
    for &c in &procs {
        ports.extend(child_addr_of(c));
    }
    server.proc.signal(libc::SIGKILL);
    server
        .proc
        .wait_exit(Duration::from_secs(5))
        .expect("killed");
    // The app and cargo die with manage; rustc and anything else in their
    // process groups is ended by the reaper, which then exits too.
    assert_all_gone(&procs, &ports);
}

#[test]
fn binding_a_public_address_warns_that_this_is_a_dev_server() {
    let (_tmp, dir) = support::generate("rs-public");
    let port = free_port();
    let mut cmd = manage();
    cmd.current_dir(&dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .args(["runserver", &format!("0.0.0.0:{port}"), "--noreload"]);
    let proc = Running::start(cmd);
    proc.wait_for_line(
        "development server: do not use it in production",
        Duration::from_secs(60),
    );
    proc.wait_for_line("Built in", REBUILD);
    assert_eq!(
        get(&format!("127.0.0.1:{port}"), "/healthz")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn refusals_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    // Not a cargo project.
    manage()
        .current_dir(tmp.path())
        .arg("runserver")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("could not read a cargo project")
                .and(predicate::str::contains("help:")),
        );

    // A library has no binary to run.
    let lib = tmp.path().join("alib");
    fs::create_dir(&lib).unwrap();
    fs::write(
        lib.join("Cargo.toml"),
        "[package]\nname = \"alib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::create_dir(lib.join("src")).unwrap();
    fs::write(lib.join("src/lib.rs"), "").unwrap();
    manage()
        .current_dir(&lib)
        .arg("runserver")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "package `alib` has no binary target to run",
        ));

    // Bad addresses.
    let (_t, dir) = support::generate("rs-refuse");
    manage()
        .current_dir(&dir)
        .args(["runserver", "not-a-port!"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a valid port"));
    manage()
        .current_dir(&dir)
        .args(["runserver", "99999"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a valid port"));

    // A port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    manage()
        .current_dir(&dir)
        .args(["runserver", &port])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is already in use"));
}

#[test]
fn requests_pass_through_with_forwarding_headers_and_without_hop_by_hop_ones() {
    let server = start_echo();
    let body = "hello body";
    let response = support::request(
        &server.addr,
        &format!(
            "POST /echo?q=1 HTTP/1.1\r\nHost: localhost\r\nX-Custom: yes\r\n\
             Connection: close, X-Drop-Me\r\nX-Drop-Me: secret\r\nKeep-Alive: timeout=5\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert_eq!(response.status, 200);
    let echoed = response.text().to_ascii_lowercase();
    assert!(echoed.starts_with("post /echo?q=1 http/1.1"), "{echoed}");
    for present in [
        "x-custom: yes",
        "host: localhost",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: localhost",
    ] {
        assert!(echoed.contains(present), "{present} missing in:\n{echoed}");
    }
    for absent in ["x-drop-me", "keep-alive: timeout"] {
        assert!(!echoed.contains(absent), "{absent} leaked into:\n{echoed}");
    }
    assert!(echoed.ends_with(body), "{echoed}");
    assert_eq!(
        response.header("x-hop"),
        None,
        "hop-by-hop response header kept"
    );
}

#[test]
fn streamed_responses_arrive_as_they_are_produced() {
    use std::io::{Read, Write};
    let server = start_echo();
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&seen).contains("chunk 0") {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("chunk 4"), "{text}");
    let first = first.expect("first chunk");
    // The app spends 800 ms producing five chunks; a buffering proxy would
    // deliver the first with the last.
    assert!(
        total - first >= Duration::from_millis(500),
        "first chunk at {first:?} of {total:?}"
    );
}

#[test]
fn a_swap_waits_for_requests_in_flight_on_the_old_app() {
    let server = start_echo();
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || get(&addr, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    // The echo app dies at once on SIGTERM: only draining saves the request.
    server.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    let swapped = eventually(REBUILD, || {
        get(&server.addr, "/version")
            .ok()
            .filter(|r| r.text() == "v2")
    });
    assert!(swapped.is_some(), "the new build never served");
    let slow = slow.join().unwrap().expect("the slow request finished");
    assert_eq!(slow.status, 200);
    assert_eq!(slow.text(), "slow v1");
}

#[test]
fn a_change_during_a_build_cancels_it_and_builds_the_newest() {
    let server = DevServer::start("rs-cancel", &[]);
    server.rename_in_code(None, "first");
    server.proc.wait_for_line("Changed", REBUILD);
    // The debounce is 20 ms; compiling takes far longer than this.
    std::thread::sleep(Duration::from_millis(120));
    server.rename_in_code(Some("first"), "second");
    server
        .proc
        .wait_for_line("build interrupted by a new change", REBUILD);
    server.wait_for_title("second is running");
}
