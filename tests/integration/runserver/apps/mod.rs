//! `manage runserver` with the apps people already have (issue 8): apps
//! that do not read PORT. Each fixture under `tests/fixtures/` is one shape:
//!
//! - `fixed-port`: binds `127.0.0.1:<port.txt>`, a port baked in at build
//!   time (the test picks a free one), as axum's examples do;
//! - `own-var`: binds `MYAPP_ADDR` (`0.0.0.0:<port>`) after a 300 ms warm-up;
//! - `listenfd`: serves only on a socket passed as fd 3 (`LISTEN_FDS=1`);
//! - `two-bins`: a virtual workspace, two packages, three binaries.
//!
//! For each shape: the app is served at manage's address, edits are
//! served with 0 failed requests from a client polling every 3 ms, and
//! SIGTERM to manage leaves no process of the app and nothing listening.
//!
//! All of them build into one shared target dir, where two copies of one
//! package would share (and race for) one executable: each test copies its
//! fixture under a package name of its own, and the workspace tests each
//! build a different binary.

mod arguments;
mod binaries;
mod fixed_port;
mod graceful;
mod listenfd;
mod own_address;
mod own_var;
mod unix_socket;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::fixtures;
use crate::support::runserver::{
    processes_running, Polled, Poller, Session, Start, FIRST_BUILD, REBUILD,
};
use crate::support::{alive, eventually, free_port, get, listen_table, manage};

fn fixture(shape: &str, renames: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    fixtures::copy(shape, renames)
}

/// runserver in `project`, whose processes run one of `exes`.
fn start(
    project: (tempfile::TempDir, PathBuf),
    exes: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
) -> Session {
    let mut start = Start::new(project).exes(exes).args(args);
    for (key, value) in env {
        start = start.env(key, value);
    }
    start.spawn()
}

/// The `fixed-port` fixture as package `name`, listening on a free port.
fn fixed_port_app(name: &str) -> (tempfile::TempDir, PathBuf, u16) {
    let (tmp, dir) = fixture(
        "fixed-port",
        &[("name = \"fixed-port\"", &format!("name = \"{name}\""))],
    );
    let port = free_port();
    fs::write(dir.join("port.txt"), format!("{port}\n")).unwrap();
    (tmp, dir, port)
}

/// Edits `VERSION` in `rel` from v1 up to v`1 + edits`, each time waiting
/// for `<name> vN` at manage's address, with a poller counting failures.
fn assert_edits_served_without_failures(
    app: &Session,
    rel: &str,
    name: &str,
    edits: u32,
) -> Polled {
    let poller = Poller::start(&app.addr);
    // Some successful requests before the first edit.
    poller.wait_for_answers(10);
    for n in 2..=edits + 1 {
        app.edit(
            rel,
            &format!("const VERSION: &str = \"v{}\";", n - 1),
            &format!("const VERSION: &str = \"v{n}\";"),
        );
        app.wait_served(&format!("{name} v{n}"), REBUILD);
    }
    poller.assert_no_failures(app)
}

/// SIGTERM to manage: it exits 0, and within 10 s no process of the app is
/// alive and nothing listens on `ports`, the app's sockets or manage's.
fn assert_sigterm_leaves_nothing(app: &mut Session, ports: &[u16]) {
    let procs = app.app_processes();
    assert!(!procs.is_empty(), "no app process found under manage");
    let mut ports = ports.to_vec();
    ports.extend(app.app_ports());
    ports.push(app.port());
    app.proc.signal(libc::SIGTERM);
    let status = app.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "manage did not exit 0 within 30 s of SIGTERM ({status:?}); stderr:\n{}",
        app.log_text()
    );
    assert_all_gone(app, &procs, &ports);
}

fn assert_all_gone(app: &Session, procs: &[i32], ports: &[u16]) {
    let still = || {
        let mut alive_now: Vec<i32> = procs.iter().copied().filter(|&p| alive(p)).collect();
        alive_now.extend(processes_running(&app.exes, &app.target));
        alive_now.sort();
        alive_now.dedup();
        let listening = listening_ports();
        let taken: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| listening.contains(p))
            .collect();
        (alive_now, taken)
    };
    let gone = eventually(Duration::from_secs(10), || {
        let (alive_now, taken) = still();
        (alive_now.is_empty() && taken.is_empty()).then_some(())
    });
    let (alive_now, taken) = still();
    assert!(
        gone.is_some(),
        "still alive: {alive_now:?}; still listening: {taken:?}; manage's stderr:\n{}",
        app.log_text()
    );
}

/// SIGKILL to manage: within 10 s no process of the app is alive and
/// nothing listens on `ports`, the app's sockets or manage's.
fn assert_sigkill_leaves_no_orphan(app: &mut Session, ports: &[u16]) {
    let procs = app.app_processes();
    assert!(!procs.is_empty(), "no app process found under manage");
    let mut ports = ports.to_vec();
    ports.extend(app.app_ports());
    ports.push(app.port());
    app.proc.signal(libc::SIGKILL);
    app.proc
        .wait_exit(Duration::from_secs(5))
        .expect("manage is killed");
    assert_all_gone(app, &procs, &ports);
}

/// A syntax error: the build fails, `<name> v1` is still served with no
/// failed request; the fix and a new version are then served.
fn assert_failed_build_keeps_serving(app: &Session, name: &str) {
    let poller = Poller::start(&app.addr);
    app.edit("src/main.rs", "fn main() {", "fn main() { let = ;");
    let failed = app.expect_outcome("build-failed", REBUILD);
    assert_eq!(failed["serving"], true, "{failed}");
    assert!(failed["errors"].as_u64() >= Some(1), "{failed}");
    // The poller keeps asking the old app for a while after the failure.
    poller.wait_for_answers(poller.answered() + 20);
    let response = get(&app.addr, "/").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), format!("{name} v1\n"));

    app.edit("src/main.rs", "fn main() { let = ;", "fn main() {");
    app.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    app.wait_served(&format!("{name} v2"), REBUILD);
    poller.assert_no_failures(app);
}

/// A request the old app is answering (`/slow`, 2 s) when an edit swaps
/// in a new build completes, from the old app.
fn assert_in_flight_request_finishes(app: &Session, name: &str) {
    let addr = app.addr.clone();
    let slow = std::thread::spawn(move || get(&addr, "/slow"));
    // The app answers /slow after 2 s: the request reaches it first.
    app.wait_for_line("slow request received", Duration::from_secs(10));
    app.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    app.wait_served(&format!("{name} v2"), REBUILD);
    let slow = slow.join().unwrap();
    match slow {
        Ok(r) => {
            assert_eq!(
                r.status,
                200,
                "{}; manage's stderr:\n{}",
                r.text(),
                app.log_text()
            );
            assert_eq!(r.text(), format!("{name} v1\n"));
        }
        Err(e) => panic!(
            "the request in flight failed: {e}; manage's stderr:\n{}",
            app.log_text()
        ),
    }
}

/// Every port something on this machine listens on (any address).
fn listening_ports() -> Vec<u16> {
    listen_table().into_iter().map(|(p, _)| p).collect()
}
