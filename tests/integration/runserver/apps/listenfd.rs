//! An app that serves only on the socket passed as fd 3.

use super::*;

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
