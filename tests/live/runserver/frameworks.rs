//! A real framework under runserver (issue #18): actix-web with two
//! workers on a fixed address (so each edit stops the old app before the
//! new one starts), whose graceful shutdown waits up to 30 s for requests
//! in flight. Each edit waits only for the app's own stop and start, never
//! for `--grace`, with 0 failed requests, and SIGTERM to manage is as
//! quick. (actix-web 4.18 also closes idle keep-alive connections itself
//! when it stops; that manage drops its own before a stop, for frameworks
//! that wait for them, is pinned in the fast tier by the `graceful`
//! fixture.) The figures it prints are in BENCHMARKS.md.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::runserver::{Poller, Start, FIRST_BUILD, REBUILD};
use crate::support::{fixtures, free_port};

/// Generous, so that only a stop that waited for it can reach it.
const GRACE_SECS: u64 = 20;

#[test]
#[allow(clippy::print_stderr)] // the figures, for BENCHMARKS.md
fn an_actix_web_app_stops_at_once_for_each_edit_and_for_ctrl_c() {
    let (tmp, dir) = fixtures::copy("actix-app", &[]);
    let port = free_port();
    fs::write(dir.join("port.txt"), format!("{port}\n")).unwrap();
    let grace = GRACE_SECS.to_string();
    let mut app = Start::new((tmp, dir))
        .exes(&["actix-app"])
        .args(&["--grace", &grace])
        .spawn();
    app.wait_served("actix-app v1", FIRST_BUILD);

    let poller = Poller::start(&app.addr);
    poller.wait_for_answers(10);
    let mut restarts = Vec::new();
    for n in 2..=4 {
        app.edit(
            "src/main.rs",
            &format!("const VERSION: &str = \"v{}\";", n - 1),
            &format!("const VERSION: &str = \"v{n}\";"),
        );
        let swapped = app.wait_swapped(REBUILD);
        assert_eq!(swapped["restarted"], true, "{swapped}");
        restarts.push((
            swapped["build_ms"].as_u64().unwrap_or_default(),
            swapped["ready_ms"].as_u64().unwrap_or_default(),
        ));
        app.wait_served(&format!("actix-app v{n}"), REBUILD);
    }
    let polled = poller.assert_no_failures(&app);
    // A stop that waited on an idle connection would hold requests until
    // actix gave up or manage killed it after --grace.
    assert!(
        polled.slowest < Duration::from_secs(GRACE_SECS / 2),
        "a request waited {:?} across a restart (--grace {GRACE_SECS}): did the old app wait \
         for an open connection? manage's stderr:\n{}",
        polled.slowest,
        app.log_text()
    );

    let stopping = Instant::now();
    app.proc.signal(libc::SIGTERM);
    let status = app
        .proc
        .wait_exit(Duration::from_secs(GRACE_SECS + 10))
        .expect("manage exits on SIGTERM");
    let stopped_in = stopping.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        stopped_in < Duration::from_secs(GRACE_SECS / 2),
        "SIGTERM took {stopped_in:?} (--grace {GRACE_SECS}); manage's stderr:\n{}",
        app.log_text()
    );
    eprintln!(
        "actix-web: restarts (build ms, stop+start ms) {restarts:?}; slowest request {} ms \
         over {} answers, 0 failed; SIGTERM to exit {} ms",
        polled.slowest.as_millis(),
        polled.ok,
        stopped_in.as_millis()
    );
}
