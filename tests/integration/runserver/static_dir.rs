//! The static directory as the dev proxy serves it (#4): validators, 304s,
//! HEAD, 405, the access log, and nothing outside the directory, however
//! spelled. In front of the std-only echo app with a static/ of its own.

use std::fs;
use std::time::Duration;

use crate::support::fixtures;
use crate::support::runserver::Start;
use crate::support::{get, request, Response};

fn get_with(addr: &str, path: &str, extra: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn static_files_are_served_by_the_proxy_with_validators() {
    let server = Start::new(fixtures::echo_with_static("rs-static")).ready();
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

    // Django-style access log lines. (The echo app answers 404 to every
    // path under /static/: the bodies above came from manage.)
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
}

#[test]
fn nothing_outside_the_static_directory_can_be_read() {
    let server = Start::new(fixtures::echo_with_static("rs-traversal")).ready();
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
