//! An app that binds an address of its own, baked in at build time.

use super::*;

#[test]
fn a_fixed_port_app_is_found_served_and_swapped_without_failures() {
    let (tmp, dir, port) = fixed_port_app("fp-edit");
    let mut app = start((tmp, dir), &["fp-edit"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    // Said once, loosely: `note: the app listens on 127.0.0.1:3000, not on
    // $PORT; proxying there`.
    let target = format!("127.0.0.1:{port}");
    let found = eventually(Duration::from_secs(10), || {
        app.lines_with("listens on")
            .into_iter()
            .find(|l| l.contains(&target))
    });
    assert!(
        found.is_some(),
        "no note that the app listens on {target}; manage's stderr:\n{}",
        app.log_text()
    );

    // Two edits: the first finds out that the port is fixed, the second
    // already knows.
    assert_edits_served_without_failures(&app, "src/main.rs", "fixed-port", 2);
    let fix_notes = app.lines_with("PORT or LISTEN_FDS");
    assert_eq!(
        fix_notes.len(),
        1,
        "one note naming the fix (read PORT or LISTEN_FDS), got {fix_notes:?}; manage's stderr:\n{}",
        app.log_text()
    );

    assert_sigterm_leaves_nothing(&mut app, &[port]);
}

#[test]
fn a_fixed_port_app_holds_requests_for_the_restart_only_never_the_build() {
    let (tmp, dir, port) = fixed_port_app("fp-held");
    // Every build of this copy sleeps 3 s in its build script, the first
    // one too (so the delay itself is no change for manage to see).
    fs::write(dir.join("build-delay-ms.txt"), "3000\n").unwrap();
    let mut app = start((tmp, dir), &["fp-held"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    let polled = assert_edits_served_without_failures(&app, "src/main.rs", "fixed-port", 1);
    // The edit's build did take 3 s.
    let swaps: Vec<_> = app
        .events()
        .into_iter()
        .filter(|e| e["event"] == "swapped")
        .collect();
    let build_ms = swaps.last().and_then(|e| e["build_ms"].as_u64());
    assert!(
        build_ms.is_some_and(|ms| ms >= 3000),
        "the build was not slow: {swaps:?}"
    );
    // Requests held through the build would take 3 s and more; the old app
    // serves during the build, and only the stop-and-start is waited for.
    assert!(
        polled.slowest < Duration::from_millis(2000),
        "a request took {:?} while the build took 3 s: was it held during the build? manage's stderr:\n{}",
        polled.slowest,
        app.log_text()
    );
    assert_sigterm_leaves_nothing(&mut app, &[port]);
}

#[test]
fn sigkill_of_manage_leaves_no_orphan_of_a_fixed_port_app() {
    let (tmp, dir, port) = fixed_port_app("fp-kill");
    let mut app = start((tmp, dir), &["fp-kill"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    assert!(listening_ports().contains(&port));
    assert_sigkill_leaves_no_orphan(&mut app, &[port]);
}

#[test]
fn a_failed_build_keeps_the_fixed_port_app_serving() {
    let (tmp, dir, _port) = fixed_port_app("fp-broken");
    let app = start((tmp, dir), &["fp-broken"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    assert_failed_build_keeps_serving(&app, "fixed-port");
}

/// README: "a new build that crashes at start leaves the old app
/// serving". For a fixed address the old app is stopped before the new one
/// starts, so keeping that promise means starting the old build again (a
/// copy of its executable: cargo has replaced the file).
#[test]
fn a_fixed_port_build_that_crashes_at_start_leaves_the_old_one_serving() {
    let (tmp, dir, _port) = fixed_port_app("fp-crash");
    let app = start((tmp, dir), &["fp-crash"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    let poller = Poller::start(&app.addr);
    app.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    eprintln!(\"boom at start\");\n    std::process::exit(3);",
    );
    // The old app was stopped for the new one: its saved copy runs again.
    let rolled = app.expect_outcome("rolled-back", REBUILD);
    assert!(
        rolled["reason"]
            .as_str()
            .is_some_and(|r| r.contains("exited at start")),
        "{rolled}"
    );
    app.wait_for_line("boom at start", Duration::from_secs(5));
    app.wait_served("fixed-port v1", Duration::from_secs(10));
    poller.assert_no_failures(&app);
}

#[test]
fn a_request_in_flight_on_the_old_fixed_port_app_finishes_before_it_stops() {
    let (tmp, dir, _port) = fixed_port_app("fp-drain");
    let app = start((tmp, dir), &["fp-drain"], &[], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    assert_in_flight_request_finishes(&app, "fixed-port");
}

#[test]
fn an_app_addr_flag_names_the_address_to_proxy_to() {
    let (tmp, dir, port) = fixed_port_app("fp-flag");
    let target = format!("127.0.0.1:{port}");
    let mut app = start((tmp, dir), &["fp-flag"], &["--app-addr", &target], &[]);
    app.wait_served("fixed-port v1", FIRST_BUILD);
    assert_sigterm_leaves_nothing(&mut app, &[port]);
}
