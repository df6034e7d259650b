//! What the dev proxy answers before any app sees a request (#4): the
//! Host check against DNS rebinding, head limits, slow clients, and
//! `--quiet` for the access log. In front of the std-only echo app.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::fixtures;
use crate::support::runserver::{start_echo, Start};
use crate::support::{get, request};

#[test]
fn the_host_check_blocks_dns_rebinding() {
    let server = Start::new(fixtures::echo_app())
        .args(&["--allowed-host", "myapp.test"])
        .ready();
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let with_host = |host: &str| {
        request(
            &server.addr,
            &format!("GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
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
    let no_host = request(&server.addr, "GET /version HTTP/1.0\r\n\r\n").unwrap();
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
    let server = start_echo();
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
        assert_eq!(get(&server.addr, "/version").unwrap().status, 200);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    drop(slow);
}

#[test]
fn quiet_silences_the_access_log() {
    let server = Start::new(fixtures::echo_with_static("rs-quiet"))
        .global(&["-q"])
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
