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

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::fixtures;
use crate::support::runserver::{
    processes_running, Polled, Poller, Session, Start, FIRST_BUILD, REBUILD,
};
use crate::support::{alive, eventually, free_port, get, listen_table, manage, shared_target_dir};

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
        alive_now.extend(processes_running(&app.exes));
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

// ---------------------------------------------------------------- fixed port

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

// -------------------------------------------------------------- own variable

#[test]
fn an_app_reading_its_own_variable_with_a_slow_start_is_served_without_failures() {
    let (tmp, dir) = fixture("own-var", &[("name = \"own-var\"", "name = \"ov-edit\"")]);
    let port = free_port();
    let own = format!("0.0.0.0:{port}");
    let mut app = start((tmp, dir), &["ov-edit"], &[], &[("MYAPP_ADDR", &own)]);
    app.wait_served("own-var v1", FIRST_BUILD);
    assert_edits_served_without_failures(&app, "src/main.rs", "own-var", 2);
    assert_sigterm_leaves_nothing(&mut app, &[port]);
}

fn own_var_app(name: &str) -> (tempfile::TempDir, PathBuf, String) {
    let (tmp, dir) = fixture(
        "own-var",
        &[("name = \"own-var\"", &format!("name = \"{name}\""))],
    );
    (tmp, dir, format!("0.0.0.0:{}", free_port()))
}

#[test]
fn sigkill_of_manage_leaves_no_orphan_of_an_own_variable_app() {
    let (tmp, dir, own) = own_var_app("ov-kill");
    let mut app = start((tmp, dir), &["ov-kill"], &[], &[("MYAPP_ADDR", &own)]);
    app.wait_served("own-var v1", FIRST_BUILD);
    let port: u16 = own.rsplit(':').next().unwrap().parse().unwrap();
    assert_sigkill_leaves_no_orphan(&mut app, &[port]);
}

#[test]
fn a_failed_build_keeps_the_own_variable_app_serving() {
    let (tmp, dir, own) = own_var_app("ov-broken");
    let app = start((tmp, dir), &["ov-broken"], &[], &[("MYAPP_ADDR", &own)]);
    app.wait_served("own-var v1", FIRST_BUILD);
    assert_failed_build_keeps_serving(&app, "own-var");
}

#[test]
fn of_several_sockets_the_one_that_answers_http_is_proxied_to() {
    let (tmp, dir, _) = own_var_app("ov-two");
    let (http, raw) = (free_port(), free_port());
    let own = format!("127.0.0.1:{http}");
    let raw_addr = format!("127.0.0.1:{raw}");
    let mut app = start(
        (tmp, dir),
        &["ov-two"],
        &[],
        &[("MYAPP_ADDR", &own), ("MYAPP_RAW_ADDR", &raw_addr)],
    );
    app.wait_served("own-var v1", FIRST_BUILD);
    let noted = eventually(Duration::from_secs(10), || {
        app.lines_with("listens on")
            .into_iter()
            .find(|l| l.contains(&own))
    });
    assert!(
        noted.is_some(),
        "no note that the app listens on {own}; manage's stderr:\n{}",
        app.log_text()
    );
    assert!(
        app.lines_with(&raw_addr).is_empty(),
        "the raw socket was taken for the app; manage's stderr:\n{}",
        app.log_text()
    );
    assert_sigterm_leaves_nothing(&mut app, &[http, raw]);
}

#[test]
fn an_app_that_never_answers_is_reported_with_everything_tried() {
    let (tmp, dir) = fixture("own-var", &[("name = \"own-var\"", "name = \"ov-slow\"")]);
    let main = dir.join("src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    assert!(text.contains("from_millis(300)"));
    fs::write(
        &main,
        text.replace("from_millis(300)", "from_millis(600_000)"),
    )
    .unwrap();
    let own = format!("0.0.0.0:{}", free_port());
    let app = start(
        (tmp, dir),
        &["ov-slow"],
        &["--ready-timeout", "3", "--health-path", "/healthz"],
        &[("MYAPP_ADDR", &own)],
    );
    let not_ready = app.expect_outcome("not-ready", FIRST_BUILD);
    let line = not_ready["reason"].as_str().unwrap_or_default();
    // Everything tried: $PORT, the passed socket, the app's own sockets
    // (none yet), the health path; and the flag for what manage cannot see.
    for needle in ["PORT", "LISTEN_FDS", "socket", "/healthz", "--app-addr"] {
        assert!(line.contains(needle), "{needle:?} not named in: {line}");
    }
    let response = get(&app.addr, "/").unwrap();
    assert!(
        matches!(response.status, 502 | 503),
        "nothing to serve, yet: {} {}",
        response.status,
        response.text()
    );
}

#[test]
fn an_app_addr_setting_names_the_address_to_proxy_to() {
    let (tmp, dir) = fixture(
        "own-var",
        &[("name = \"own-var\"", "name = \"ov-setting\"")],
    );
    let port = free_port();
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace(
            "[dependencies]",
            &format!(
                "[package.metadata.manage]\napp-addr = \"127.0.0.1:{port}\"\n\n[dependencies]"
            ),
        ),
    )
    .unwrap();
    let own = format!("127.0.0.1:{port}");
    let mut app = start((tmp, dir), &["ov-setting"], &[], &[("MYAPP_ADDR", &own)]);
    app.wait_served("own-var v1", FIRST_BUILD);
    assert_sigterm_leaves_nothing(&mut app, &[port]);
}

// ------------------------------------------------------------- passed socket

fn listenfd_app(name: &str) -> (tempfile::TempDir, PathBuf) {
    fixture(
        "listenfd",
        &[("name = \"listenfd-app\"", &format!("name = \"{name}\""))],
    )
}

#[test]
fn an_app_using_only_the_passed_socket_is_served_and_swapped_without_failures() {
    let mut app = start(listenfd_app("lfd-edit"), &["lfd-edit"], &[], &[]);
    app.wait_served("listenfd-app v1", FIRST_BUILD);
    assert_edits_served_without_failures(&app, "src/main.rs", "listenfd-app", 2);
    assert_sigterm_leaves_nothing(&mut app, &[]);
}

#[test]
fn a_failed_build_keeps_the_passed_socket_app_serving() {
    let app = start(listenfd_app("lfd-broken"), &["lfd-broken"], &[], &[]);
    app.wait_served("listenfd-app v1", FIRST_BUILD);
    assert_failed_build_keeps_serving(&app, "listenfd-app");
}

#[test]
fn sigkill_of_manage_leaves_no_orphan_of_a_passed_socket_app() {
    let mut app = start(listenfd_app("lfd-kill"), &["lfd-kill"], &[], &[]);
    app.wait_served("listenfd-app v1", FIRST_BUILD);
    assert_sigkill_leaves_no_orphan(&mut app, &[]);
}

#[test]
fn a_request_in_flight_on_the_old_passed_socket_app_finishes() {
    let app = start(listenfd_app("lfd-drain"), &["lfd-drain"], &[], &[]);
    app.wait_served("listenfd-app v1", FIRST_BUILD);
    assert_in_flight_request_finishes(&app, "listenfd-app");
}

// ------------------------------------------------------ which binary to run

/// `manage runserver` in `dir`, expected to refuse before serving; bounded
/// in time in case it does not.
fn refused_run(dir: &Path) -> std::process::Output {
    let mut cmd = manage();
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .args(["runserver", &free_port().to_string()]);
    assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

#[test]
fn an_ambiguous_binary_is_refused_with_the_candidates_and_the_flag() {
    let (_tmp, dir) = fixture("two-bins", &[]);
    let out = refused_run(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for candidate in ["ws-alpha", "ws-beta"] {
        assert!(
            stderr.contains(candidate),
            "{candidate} not listed:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("--bin") || stderr.contains("-p"),
        "no flag named:\n{stderr}"
    );

    // One package with two binaries and no `default-run`.
    let beta = dir.join("beta");
    let manifest = beta.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("default-run = \"ws-beta\"\n", "")).unwrap();
    let out = refused_run(&beta);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for candidate in ["`ws-beta`", "ws-beta-worker"] {
        assert!(
            stderr.contains(candidate),
            "{candidate} not listed:\n{stderr}"
        );
    }
    assert!(stderr.contains("--bin"), "no flag named:\n{stderr}");
}

#[test]
fn dash_p_runs_the_packages_default_binary_in_a_workspace() {
    let mut app = start(
        fixture("two-bins", &[]),
        &["ws-beta"],
        &["-p", "ws-beta"],
        &[],
    );
    app.wait_served("ws-beta v1", FIRST_BUILD);
    assert_sigterm_leaves_nothing(&mut app, &[]);
}

#[test]
fn dash_dash_bin_picks_a_binary_at_the_workspace_root() {
    let mut app = start(
        fixture("two-bins", &[]),
        &["ws-beta-worker"],
        &["--bin", "ws-beta-worker"],
        &[],
    );
    app.wait_served("ws-beta-worker v1", FIRST_BUILD);
    assert_edits_served_without_failures(
        &app,
        "beta/src/bin/ws-beta-worker.rs",
        "ws-beta-worker",
        1,
    );
    assert_sigterm_leaves_nothing(&mut app, &[]);
}
