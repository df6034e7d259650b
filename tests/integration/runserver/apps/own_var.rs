//! An app that reads its own variable (`MYAPP_ADDR`), slowly.

use super::*;

#[test]
fn an_app_reading_its_own_variable_with_a_slow_start_is_served_without_failures() {
    let (tmp, dir) = fixture("own-var", &[("name = \"own-var\"", "name = \"ov-edit\"")]);
    let port = free_port();
    let own = format!("0.0.0.0:{port}");
    let mut app = start((tmp, dir), &["ov-edit"], &[], &[("MYAPP_ADDR", &own)]);
    app.wait_served("own-var v1", FIRST_BUILD);
    // It binds 0.0.0.0: said once.
    app.wait_for_line("listens on all interfaces", Duration::from_secs(5));
    assert_edits_served_without_failures(&app, "src/main.rs", "own-var", 2);
    assert_eq!(app.lines_with("listens on all interfaces").len(), 1);
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
