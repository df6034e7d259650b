//! The dev proxy as a browser meets it (#4), in front of a generated
//! project: static files, the Host check, limits, the access log. What it
//! does to pages: `pages.rs`.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::pages::get_with;
use crate::support::runserver::{start_scaffold, Start};
use crate::support::{self, eventually, get, request};

#[test]
fn static_files_are_served_by_the_proxy_with_validators() {
    let server = start_scaffold("dp-static", &[]);
    let css = fs::read(server.dir.join("static/css/site.css")).unwrap();

    let r = get(&server.addr, "/static/css/site.css").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/css"),
        "{r:?}"
    );
    assert_eq!(r.body, css);
    let etag = r.header("etag").expect("etag").to_owned();
    let modified = r.header("last-modified").expect("last-modified").to_owned();

    let r = get_with(
        &server.addr,
        "/static/css/site.css",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = get_with(
        &server.addr,
        "/static/css/site.css",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(r.status, 304);

    let head = request(
        &server.addr,
        "HEAD /static/css/site.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(css.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    let svg = get(&server.addr, "/static/favicon.svg").unwrap();
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    for missing in [
        "/static/",
        "/static/css",
        "/static/css/",
        "/static/nope.css",
    ] {
        assert_eq!(get(&server.addr, missing).unwrap().status, 404, "{missing}");
    }
    let post = request(
        &server.addr,
        "POST /static/css/site.css HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);

    // Django-style access log lines; the app itself never saw /static/.
    let logged = server.wait_for_line(
        "\"GET /static/css/site.css HTTP/1.1\" 200",
        Duration::from_secs(5),
    );
    assert!(logged.starts_with('['), "{logged}");
    assert!(logged.ends_with(&format!(" 200 {}", css.len())), "{logged}");
    server.wait_for_line(
        "\"GET /static/css/site.css HTTP/1.1\" 304 0",
        Duration::from_secs(5),
    );
    let lines = server.lines_with("GET /static/");
    assert!(
        !lines.iter().any(|l| l.ends_with("ms")),
        "the app saw a static request: {lines:#?}"
    );
}

#[test]
fn nothing_outside_the_static_directory_can_be_read() {
    let server = start_scaffold("dp-traversal", &[]);
    std::os::unix::fs::symlink(
        server.dir.join("Cargo.toml"),
        server.dir.join("static/link.toml"),
    )
    .unwrap();
    fs::write(server.dir.join("static/.secret"), "[package] hidden").unwrap();
    for path in [
        "/static/../Cargo.toml",
        "/static/css/../../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/Cargo.toml",
        "/static/.%2e/Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/..%2FCargo.toml",
        "/static/%2e%2e%2fCargo.toml",
        "/static/..%5cCargo.toml",
        "/static/%252e%252e/Cargo.toml",
        "/static/%252e%252e%252fCargo.toml",
        "/static/%2f%2e%2e%2fCargo.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/css/site.css%00",
        "/static/%00../Cargo.toml",
        "/static/link.toml",
        "/static/.secret",
        "/static/%2esecret",
    ] {
        let r = get(&server.addr, path).unwrap();
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("[package]"), "{path} leaked");
    }
    // Targets hyper refuses to parse never reach a file either.
    for raw in ["/static/..\\Cargo.toml", "/static/\\..\\Cargo.toml"] {
        let r = get(&server.addr, raw).unwrap();
        assert!(matches!(r.status, 400 | 404), "{raw}: {}", r.status);
        assert!(!r.text().contains("[package]"), "{raw} leaked");
    }
    let absolute = request(
        &server.addr,
        "GET http://localhost/static/../Cargo.toml HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(!absolute.text().contains("[package]"));
}

#[test]
fn the_host_check_blocks_dns_rebinding() {
    let server = start_scaffold("dp-hosts", &["--allowed-host", "myapp.test"]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let with_host = |host: &str| {
        request(
            &server.addr,
            &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap()
    };
    for ok in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "myapp.test".to_owned(),
    ] {
        assert_eq!(with_host(&ok).status, 200, "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:80",
        "localhost.evil.example",
        "10.1.2.3",
    ] {
        let r = with_host(bad);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().contains("--allowed-host"), "{}", r.text());
    }
    let no_host = request(&server.addr, "GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(no_host.status, 400);
    // Not hosts at all: a clear 400, and the server goes on (these once
    // panicked the connection task).
    for malformed in [
        "[",
        "[abc",
        "[::1",
        "[::1]evil.example",
        "[::1]@evil.example",
        "localhost@evil.example",
        "localhost:99999999999",
    ] {
        let r = with_host(malformed);
        assert_eq!(r.status, 400, "{malformed}");
        assert!(r.text().contains("not a valid host"), "{}", r.text());
    }
    assert_eq!(with_host(&format!("localhost:{port}")).status, 200);
    let panics = server.lines_with("panicked");
    assert!(panics.is_empty(), "{panics:#?}");
}

#[test]
fn limits_and_slow_clients() {
    let server = start_scaffold("dp-limits", &[]);
    let huge = "x".repeat(64 * 1024);
    let r = request(
        &server.addr,
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {huge}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.status, 431);
    let r = request(&server.addr, "GARBAGE\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);

    // A client that never finishes its request holds up nobody else.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(get(&server.addr, "/healthz").unwrap().status, 200);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    drop(slow);
}

#[test]
fn quiet_silences_the_access_log() {
    let server = Start::new(support::generate("dp-quiet"))
        .global(&["-q"])
        .args(&["--migrate"])
        .ready();
    for _ in 0..3 {
        get(&server.addr, "/static/css/site.css").unwrap();
    }
    // What must not be printed: a window is all a test can give. manage
    // prints an access line as a response ends, well within it.
    std::thread::sleep(Duration::from_millis(500));
    let lines = server.lines_with("\"GET /");
    assert!(!lines.iter().any(|l| l.starts_with('[')), "{lines:#?}");
}

/// Each request is printed once: manage's access line, not the app's too
/// (runserver sets ACCESS_LOG=off for the app); a user's ACCESS_LOG wins.
#[test]
fn each_request_is_logged_once_unless_the_app_is_asked_to_log_too() {
    let mut project = Some(support::generate("dp-once"));
    for (access_log, app_lines) in [(None, false), (Some("on"), true)] {
        let mut start = Start::new(project.take().unwrap())
            .env_remove("ACCESS_LOG")
            .args(&["--migrate"]);
        if let Some(value) = access_log {
            start = start.env("ACCESS_LOG", value);
        }
        let server = start.ready();
        assert_eq!(get(&server.addr, "/logged-once").unwrap().status, 404);
        // manage's access line ...
        server.wait_for_line("\"GET /logged-once HTTP/1.1\" 404", Duration::from_secs(10));
        let app_line =
            |l: &String| !l.starts_with('[') && l.contains("\"GET /logged-once HTTP/1.1\" 404");
        if app_lines {
            // ... and the app's, when asked for.
            let seen = eventually(Duration::from_secs(10), || {
                server.lines_with("/logged-once").into_iter().find(app_line)
            });
            assert!(
                seen.is_some(),
                "ACCESS_LOG=on: no app line; {}",
                server.log_text()
            );
        } else {
            // ... and not the app's: a window for what must not come.
            std::thread::sleep(Duration::from_millis(500));
            let lines = server.lines_with("/logged-once");
            assert!(!lines.iter().any(app_line), "ACCESS_LOG unset: {lines:#?}");
        }
        // The app's /metrics through manage's proxy: the client it names
        // is this machine's.
        let metrics = get(&server.addr, "/metrics").unwrap();
        assert_eq!(metrics.status, 200, "{}", metrics.text());
        assert!(
            metrics.text().contains(r#"route="unmatched",status="404""#),
            "{}",
            metrics.text()
        );
        project = Some(server.stop());
    }
}
