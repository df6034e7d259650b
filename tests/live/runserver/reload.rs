//! `manage runserver` against real cargo builds of generated projects:
//! edits, broken builds, crashes, save storms, Ctrl-C and SIGKILL.

use std::fs;
use std::time::Duration;

use crate::support::runserver::{start_scaffold, Poller, REBUILD};
use crate::support::{alive, descendants, eventually, get};

#[test]
fn edits_are_served_with_zero_failed_requests() {
    let server = start_scaffold("rs-edit", &[]);
    assert_eq!(server.title().as_deref(), Some("rs-edit is running"));

    let poller = Poller::start(&server.addr);
    poller.wait_for_answers(10);
    let mut previous = None;
    for i in 1..=3 {
        let next = format!("rs-edit edit {i}");
        server.rename_in_code(previous.as_deref(), &next);
        server.wait_for_title(&format!("{next} is running"));
        previous = Some(next);
    }
    poller.assert_no_failures(&server);
}

#[test]
fn a_broken_build_keeps_the_old_app_and_a_fix_restores_it() {
    let server = start_scaffold("rs-broken", &[]);
    server.edit("src/main.rs", "fn main() {", "fn main() -> { broken");
    let failed = server.expect_outcome("build-failed", REBUILD);
    assert_eq!(failed["serving"], true, "{failed}");
    let line = server.wait_for_line("Build failed", Duration::from_secs(5));
    assert!(line.contains("still serving the previous build"), "{line}");
    assert_eq!(server.title().as_deref(), Some("rs-broken is running"));

    server.edit("src/main.rs", "fn main() -> { broken", "fn main() {");
    server.rename_in_code(None, "fixed");
    server.wait_for_title("fixed is running");
}

#[test]
fn a_build_failure_prints_the_compiler_error() {
    let server = start_scaffold("rs-diag", &[]);
    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    let _x: u32 = \"not a number\";",
    );
    // The event carries the diagnostics, without colour.
    let failed = server.expect_outcome("build-failed", REBUILD);
    assert_eq!(failed["errors"], 1, "{failed}");
    let diagnostic = &failed["diagnostics"][0];
    assert_eq!(diagnostic["level"], "error", "{failed}");
    assert_eq!(diagnostic["message"], "mismatched types", "{failed}");
    assert!(
        diagnostic["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("src/main.rs")),
        "{failed}"
    );
    assert!(diagnostic["line"].as_u64().is_some(), "{failed}");
    let rendered = diagnostic["rendered"].as_str().unwrap_or_default();
    assert!(
        rendered.contains("error[E0308]") && !rendered.contains('\u{1b}'),
        "{rendered:?}"
    );
    // The terminal shows the same, also without colour off a terminal.
    server.wait_for_line("Build failed", Duration::from_secs(5));
    let text = server.log_text();
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
    let server = start_scaffold("rs-crash", &[]);
    let children = crate::support::app_descendants(server.proc.pid());
    assert_eq!(children.len(), 1, "one app process: {children:?}");
    // SAFETY: kill(2) on the app process this test started through manage.
    unsafe {
        libc::kill(children[0], libc::SIGKILL);
    }
    let exited = server.wait_event("app-exited", REBUILD);
    assert_eq!(exited["signal"], 9, "{exited}");
    assert_eq!(exited["pid"], children[0], "{exited}");
    server.wait_for_line(
        "The app exited (killed by signal 9 (SIGKILL))",
        Duration::from_secs(5),
    );
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
    let server = start_scaffold("rs-exit", &[]);
    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    eprintln!(\"boom at start\");\n    std::process::exit(3);",
    );
    let not_ready = server.expect_outcome("not-ready", REBUILD);
    assert_eq!(not_ready["exit"]["code"], 3, "{not_ready}");
    assert_eq!(not_ready["serving"], true, "{not_ready}");
    let line = server.wait_for_line("never became ready", Duration::from_secs(5));
    assert!(line.contains("exit status 3"), "{line}");
    assert!(line.contains("still serving the previous build"), "{line}");
    server.wait_for_line("boom at start", Duration::from_secs(5));
    assert_eq!(server.title().as_deref(), Some("rs-exit is running"));
}

#[test]
fn a_save_storm_gives_one_build_and_touches_give_none() {
    let server = start_scaffold("rs-storm", &[]);
    let storm = server.dir.join("src/storm");
    fs::create_dir(&storm).unwrap();
    // Rust files (which always build) that no module declares: one
    // build, in which cargo finds nothing to do.
    for i in 0..300 {
        fs::write(storm.join(format!("f{i}.rs")), format!("// file {i}\n")).unwrap();
    }
    server.expect_outcome("unchanged", REBUILD);
    // Anything else the storm caused would show within a few seconds.
    let extra = server.count_within("build-started", Duration::from_secs(4));
    assert_eq!(extra, 0, "the storm caused more than one build");

    // Saving files without changing them: no build at all.
    server.skip_events();
    for i in 0..300 {
        let path = storm.join(format!("f{i}.rs"));
        fs::write(&path, format!("// file {i}\n")).unwrap();
    }
    let main = server.dir.join("src/main.rs");
    fs::write(&main, fs::read(&main).unwrap()).unwrap();
    let builds = server.count_within("build-started", Duration::from_secs(4));
    assert_eq!(builds, 0, "unchanged content was rebuilt");
}

#[test]
fn ctrl_c_stops_the_app_gracefully_and_exits_0() {
    let mut server = start_scaffold("rs-stop", &[]);
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
    let mut server = start_scaffold("rs-kill", &[]);
    // A build in flight too: its cargo must not survive either.
    server.rename_in_code(None, "killed");
    server.wait_event("build-started", REBUILD);
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
    let server = start_scaffold("rs-cancel", &[]);
    server.rename_in_code(None, "first");
    server.wait_event("build-started", REBUILD);
    // Compiling takes far longer than saving again.
    server.rename_in_code(Some("first"), "second");
    server.wait_event("build-cancelled", REBUILD);
    server.wait_for_line("build interrupted by a new change", Duration::from_secs(5));
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

fn port_is_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}
