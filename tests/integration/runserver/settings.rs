//! `[package.metadata.manage]` edited under a running server: every
//! setting takes effect (the proxy's, the watcher's, the next start's),
//! and the terminal and `--events` say which changed.

use std::fs;
use std::time::Duration;

use crate::support::fixtures;
use crate::support::runserver::{Start, REBUILD};
use crate::support::{eventually, get, request, Response};

fn get_for(addr: &str, host: &str, path: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn a_cargo_toml_edit_changes_static_dir_allowed_hosts_and_health_path_in_place() {
    let server = Start::new(fixtures::echo_with_static("rs-settings")).ready();
    fs::create_dir_all(server.dir.join("assets/css")).unwrap();
    fs::write(
        server.dir.join("assets/css/other.css"),
        "p { margin: 0; }\n",
    )
    .unwrap();

    // As generated: static/ is served, a foreign Host is refused, and a
    // new build is ready when its socket accepts (no request sent).
    assert_eq!(
        get(&server.addr, "/static/css/site.css").unwrap().status,
        200
    );
    assert_eq!(
        get(&server.addr, "/static/css/other.css").unwrap().status,
        404
    );
    let foreign = get_for(&server.addr, "app.example.test", "/version");
    assert_eq!(foreign.status, 400, "{foreign:?}");
    assert!(foreign.text().contains("allowed-hosts"), "{foreign:?}");

    server.edit(
        "Cargo.toml",
        "[dependencies]",
        "[package.metadata.manage]\n\
         static-dir = \"assets\"\n\
         allowed-hosts = [\"app.example.test\"]\n\
         health-path = \"/version\"\n\
         debounce-ms = 30\n\n\
         [dependencies]",
    );
    let reloaded = server.wait_event("manifest-reloaded", REBUILD);
    let changed: Vec<&str> = reloaded["changed"]
        .as_array()
        .expect("the settings that changed")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        changed,
        ["health-path", "debounce-ms", "static-dir", "allowed-hosts"],
        "{reloaded}"
    );
    server.wait_for_line(
        "Cargo.toml · health-path, debounce-ms, static-dir, allowed-hosts",
        Duration::from_secs(5),
    );
    // The package did not change, so no new app starts for the manifest.
    server.expect_outcome("unchanged", REBUILD);

    // The proxy: the new static directory, the new host.
    let css = get(&server.addr, "/static/css/other.css").unwrap();
    assert_eq!((css.status, css.text()), (200, "p { margin: 0; }\n".into()));
    assert_eq!(
        get(&server.addr, "/static/css/site.css").unwrap().status,
        404
    );
    let allowed = get_for(&server.addr, "app.example.test", "/version");
    assert_eq!((allowed.status, allowed.text()), (200, "v1".into()));

    // The watcher: a stylesheet in the new directory is a static change
    // (no build), one in the old is nothing it serves any more.
    server.skip_events();
    fs::write(
        server.dir.join("assets/css/other.css"),
        "p { margin: 1px; }\n",
    )
    .unwrap();
    let change = server.wait_event("change", Duration::from_secs(10));
    assert_eq!(
        change["static"],
        serde_json::json!(["assets/css/other.css"]),
        "{change}"
    );
    assert_eq!(change["code"], serde_json::json!([]), "{change}");

    // The next start: readiness asks the new health path (the app says
    // so on stderr, which manage passes on).
    let before = server.lines_with("echo-app GET /version").len();
    server.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    server.wait_swapped(REBUILD);
    let asked = eventually(Duration::from_secs(5), || {
        (server.lines_with("echo-app GET /version").len() > before).then_some(())
    });
    assert!(
        asked.is_some(),
        "no health check at /version:\n{}",
        server.log_text()
    );
    assert_eq!(get(&server.addr, "/version").unwrap().text(), "v2");
}
