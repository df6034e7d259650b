//! An app that listens on a Unix socket (`app.sock` in its directory),
//! found among its processes' sockets or named by `--app-addr unix:PATH`.

use serde_json::Value;

use super::*;

fn unix_app(name: &str) -> (tempfile::TempDir, PathBuf) {
    fixture(
        "unix-socket",
        &[("name = \"unix-socket\"", &format!("name = \"{name}\""))],
    )
}

/// The `app-ready` event of the first start.
fn first_ready(app: &Session) -> Value {
    app.events()
        .into_iter()
        .find(|e| e["event"] == "app-ready")
        .expect("an app-ready event")
}

#[test]
fn a_unix_socket_app_is_found_served_and_swapped_without_failures() {
    let mut app = start(unix_app("us-edit"), &["us-edit"], &[], &[]);
    app.wait_served("unix-socket v1", FIRST_BUILD);
    let socket = app.dir.join("app.sock");
    let ready = first_ready(&app);
    assert_eq!(ready["via"], "discovered", "{ready}");
    assert_eq!(
        ready["addr"],
        format!("unix:{}", socket.display()),
        "the relative path is made absolute from the app's directory"
    );
    assert!(
        !app.lines_with(&format!("listens on unix:{}", socket.display()))
            .is_empty(),
        "no note of where the app listens; manage's stderr:\n{}",
        app.log_text()
    );
    // The app does not unlink a leftover socket file before it binds:
    // each swap works only if manage removes the old app's.
    assert_edits_served_without_failures(&app, "src/main.rs", "unix-socket", 2);
    assert_sigterm_leaves_nothing(&mut app, &[]);
    assert!(
        !socket.exists(),
        "the stopped app's socket file is left behind"
    );
}

#[test]
fn an_app_addr_flag_names_a_unix_socket() {
    let (tmp, dir) = unix_app("us-flag");
    // The app binds run/app.sock; the directory must be there.
    fs::create_dir(dir.join("run")).unwrap();
    let mut app = start(
        (tmp, dir),
        &["us-flag"],
        &["--app-addr", "unix:run/app.sock"],
        &[("SOCKET_PATH", "run/app.sock")],
    );
    app.wait_served("unix-socket v1", FIRST_BUILD);
    let ready = first_ready(&app);
    assert_eq!(ready["via"], "app-addr", "{ready}");
    assert_eq!(
        ready["addr"],
        format!("unix:{}", app.dir.join("run/app.sock").display())
    );
    assert_sigterm_leaves_nothing(&mut app, &[]);
}

#[test]
fn a_failed_build_keeps_the_unix_socket_app_serving() {
    let app = start(unix_app("us-broken"), &["us-broken"], &[], &[]);
    app.wait_served("unix-socket v1", FIRST_BUILD);
    assert_failed_build_keeps_serving(&app, "unix-socket");
}

#[test]
fn a_request_in_flight_on_the_old_unix_socket_app_finishes() {
    let app = start(unix_app("us-drain"), &["us-drain"], &[], &[]);
    app.wait_served("unix-socket v1", FIRST_BUILD);
    assert_in_flight_request_finishes(&app, "unix-socket");
}

#[test]
fn sigkill_of_manage_leaves_no_orphan_of_a_unix_socket_app() {
    let mut app = start(unix_app("us-kill"), &["us-kill"], &[], &[]);
    app.wait_served("unix-socket v1", FIRST_BUILD);
    assert_sigkill_leaves_no_orphan(&mut app, &[]);
}

#[test]
fn a_unix_app_addr_that_cannot_be_one_is_refused() {
    let (_tmp, dir) = unix_app("us-bad");
    let long = format!("unix:/{}", "x".repeat(120));
    for (value, needle) in [
        ("unix:", "needs the socket's path"),
        ("unix:@name", "abstract Unix sockets"),
        (long.as_str(), "at most 107"),
    ] {
        let out = manage()
            .current_dir(&dir)
            .args(["runserver", "--app-addr", value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{value:?} accepted: {stderr}");
        assert!(stderr.contains(needle), "{value:?}: {stderr}");
        assert!(
            stderr.contains("invalid app address"),
            "{value:?}: {stderr}"
        );
    }
}
