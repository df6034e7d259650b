//! `manage runserver` against real cargo builds of generated projects:
//! edits, broken builds, crashes, save storms, Ctrl-C and SIGKILL.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::devserver::{DevServer, REBUILD};
use crate::support::{alive, descendants, eventually, get, Running};

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

fn child_addr_of(pid: i32) -> Vec<String> {
    crate::support::listening_ports_of(pid)
        .into_iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect()
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

fn port_is_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}
