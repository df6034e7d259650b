//! An app that stops as actix-web and Rocket do: on SIGTERM it waits for
//! its open connections, idle keep-alive ones included. manage closes its
//! pooled connections to an app before stopping it, so such an app stops
//! at once, not after the grace period (#18).

use super::*;

/// The milliseconds the app says its stop took.
fn stop_ms(line: &str) -> u64 {
    line.split("stopped ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no stop time in {line:?}"))
}

#[test]
fn a_graceful_app_stops_at_once_when_swapped_and_on_ctrl_c() {
    // A grace longer than the proxy's pool keeps idle connections (15 s):
    // without the closing, the old app would stop only when they time out.
    let mut app = start(
        fixture("graceful", &[]),
        &["graceful"],
        &["--grace", "30"],
        &[],
    );
    app.wait_served("graceful v1", FIRST_BUILD);
    let first = app
        .events()
        .into_iter()
        .rev()
        .find(|e| e["event"] == "swapped")
        .unwrap();
    // Requests through the proxy leave keep-alive connections in its pool.
    for _ in 0..5 {
        assert_eq!(get(&app.addr, "/").unwrap().status, 200);
    }
    app.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    app.wait_swapped(REBUILD);
    let line = app.wait_for_line("graceful v1: stopped", Duration::from_secs(20));
    assert!(
        stop_ms(&line) < 5_000,
        "the old app waited for the proxy's idle connections: {line}"
    );
    let old = first["pid"].as_i64().unwrap() as i32;
    assert!(
        eventually(Duration::from_secs(5), || (!alive(old)).then_some(())).is_some(),
        "the old app {old} is still alive"
    );

    // Ctrl-C: the same for the app that serves.
    for _ in 0..5 {
        assert_eq!(get(&app.addr, "/").unwrap().status, 200);
    }
    app.proc.signal(libc::SIGINT);
    let status = app.proc.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let line = app.wait_for_line("graceful v2: stopped", Duration::from_secs(5));
    assert!(
        stop_ms(&line) < 5_000,
        "the app waited for the proxy's idle connections: {line}"
    );
}
