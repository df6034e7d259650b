//! Apps that reach for manage's own address (Rocket binds 127.0.0.1:8000
//! by default, which runserver holds by default): manage hands Rocket's
//! variables the app's port, and says plainly what to do when an app
//! still wants manage's address (#18).

use super::*;

#[test]
fn an_app_reading_rockets_variables_gets_its_own_port() {
    let app = start(
        fixture(
            "rocket-vars",
            &[("name = \"rocket-vars\"", "name = \"rv-port\"")],
        ),
        &["rv-port"],
        &[],
        // Whatever the user's environment says, the app's port wins.
        &[("ROCKET_PORT", "1")],
    );
    let ready = app.wait_event("app-ready", FIRST_BUILD);
    assert_eq!(ready["via"], "port", "found where manage said: {ready}");
    app.wait_served("rocket-vars v1", REBUILD);
    let poller = Poller::start(&app.addr);
    poller.wait_for_answers(10);
    app.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    app.wait_served("rocket-vars v2", REBUILD);
    poller.assert_no_failures(&app);
}

#[test]
fn an_app_that_wants_managers_address_is_told_both_fixes() {
    // The fixed-port fixture, baked to the port manage will listen on.
    let port = free_port();
    let (tmp, dir) = fixture(
        "fixed-port",
        &[("name = \"fixed-port\"", "name = \"fp-own-address\"")],
    );
    fs::write(dir.join("port.txt"), format!("{port}\n")).unwrap();
    let app = Start::new((tmp, dir))
        .addr(&format!("127.0.0.1:{port}"))
        .exes(&["fp-own-address"])
        .spawn();
    let not_ready = app.expect_outcome("not-ready", FIRST_BUILD);
    let reason = not_ready["reason"].as_str().unwrap_or_default();
    for needle in [
        "the address it wants is in use",
        &format!("127.0.0.1:{port}, the address manage's dev server holds"),
        &format!("`manage runserver {}`", port + 1),
        "ROCKET_PORT",
        "PORT",
    ] {
        assert!(reason.contains(needle), "{needle:?} not in: {reason}");
    }
    // Its words on stdout are kept, as Rocket's are.
    let tail = not_ready["exit"]["output_tail"].to_string();
    assert!(tail.contains("cannot bind"), "{not_ready}");
    // The page says the same.
    let page = crate::support::request(
        &app.addr,
        "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        page.text()
            .contains("the address manage&#x27;s dev server holds")
            || page
                .text()
                .contains("the address manage's dev server holds"),
        "{}",
        page.text()
    );
}
