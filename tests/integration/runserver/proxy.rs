//! The dev proxy against hostile requests and odd responses (#9): strict
//! hosts, exact limits, unknown codings, stuck apps, injection only where
//! it is safe, file descriptors and live-reload listeners.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::fixtures;
use crate::support::runserver::{start_echo, Session, Start};
use crate::support::{read_until_closed, request, Response};

/// A std-only app with one odd response per path.
const PAGES: &str = r#"
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() {
    let port = std::env::var("PORT").expect("PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" { break; }
            }
            let head_only = line.starts_with("HEAD ");
            let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
            let mut out = stream;
            let page = "<html><body><p>page</p></body></html>";
            let (head, body): (String, Vec<u8>) = match path.as_str() {
                "/chunked" => {
                    let a = "<html><body><p>one";
                    let b = "</p></body></html>";
                    let body = format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
                    ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n".into(), body.into_bytes())
                }
                "/partial" => (format!("HTTP/1.1 206 Partial Content\r\nContent-Type: text/html\r\nContent-Range: bytes 0-{}/99\r\nContent-Length: {}\r\n", page.len() - 1, page.len()), page.into()),
                "/gzip" => (format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n", page.len()), page.into()),
                "/digest" => (format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nDigest: sha-256=abc\r\nETag: \"x\"\r\nContent-Length: {}\r\n", page.len()), page.into()),
                "/endless" => {
                    // 64 KiB at a time, up to 1 GiB, for as long as anyone takes it.
                    let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
                    let chunk = vec![b'x'; 64 * 1024];
                    for _ in 0..16384 {
                        if out.write_all(&chunk).is_err() { break; }
                    }
                    return;
                }
                "/stuck" => {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    return;
                }
                _ => ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n".into(), b"ok\n".to_vec()),
            };
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(b"Connection: close\r\n\r\n");
            if !head_only {
                let _ = out.write_all(&body);
            }
        });
    }
}
"#;

fn pages(extra: &[&str]) -> Session {
    Start::new(fixtures::std_app("hard-pages", PAGES))
        .args(extra)
        .env(
            "MANAGE_SEND_TIMEOUT_MS",
            &SEND_TIMEOUT.as_millis().to_string(),
        )
        .ready()
}

/// The send timeout (30 s) as these tests set it (`MANAGE_SEND_TIMEOUT_MS`).
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

fn raw(server: &Session, head: &str) -> Response {
    request(&server.addr, head).expect("an answer")
}

#[test]
fn hosts_are_strict_and_the_app_sees_the_host_the_request_was_for() {
    let server = start_echo();
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let two = raw(
        &server,
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(two.status, 400, "two Host headers");
    let absolute_evil = raw(
        &server,
        "GET http://evil.example/echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        absolute_evil.status, 400,
        "an absolute target for another host"
    );
    let absolute_ok = raw(
        &server,
        &format!(
            "GET http://localhost:{port}/echo HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(absolute_ok.status, 200);
    // Listing Host in Connection does not take it from the app, and a
    // client's Forwarded does not reach it.
    let echoed = raw(
        &server,
        &format!(
            "GET /echo HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close, Host\r\n\
             Forwarded: host=evil.example\r\nX-Forwarded-Host: evil.example\r\n\r\n"
        ),
    )
    .text()
    .to_ascii_lowercase();
    assert!(
        echoed.contains(&format!("host: localhost:{port}")),
        "{echoed}"
    );
    assert!(!echoed.contains("evil.example"), "{echoed}");
    assert!(
        echoed.contains(&format!(
            "forwarded: for=127.0.0.1;host=\"localhost:{port}\";proto=http"
        )),
        "{echoed}"
    );
}

#[test]
fn the_head_limit_is_exact_and_unknown_codings_are_refused() {
    let server = start_echo();
    let with_filler = |total: usize| {
        let start = "GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Fill: ";
        let end = "\r\n\r\n";
        let filler = "a".repeat(total - start.len() - end.len());
        raw(&server, &format!("{start}{filler}{end}"))
    };
    assert_eq!(
        with_filler(32 * 1024).status,
        200,
        "a head of exactly 32 KiB"
    );
    assert_eq!(with_filler(32 * 1024 + 1).status, 431, "one byte more");
    assert_eq!(with_filler(40 * 1024).status, 431);
    let coded = raw(
        &server,
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\
         Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(coded.status, 501);
}

#[test]
fn injection_only_where_safe_and_streamed_pages_too() {
    let server = pages(&["--response-timeout", "2"]);
    let get = |path: &str| {
        raw(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n"),
        )
    };
    let chunked = get("/chunked");
    assert_eq!(chunked.status, 200);
    let text = chunked.text();
    assert!(
        text.contains("livereload.js"),
        "streamed HTML gets the script: {text}"
    );
    assert!(text.find("livereload.js") < text.find("</body>"), "{text}");
    assert!(
        !get("/partial").text().contains("livereload"),
        "206 is left alone"
    );
    assert!(
        !get("/gzip").text().contains("livereload"),
        "gzip is left alone"
    );

    let digest = get("/digest");
    let body_len = digest.body.len();
    assert!(digest.text().contains("livereload.js"));
    assert_eq!(
        digest.header("content-length"),
        Some(body_len.to_string().as_str())
    );
    for gone in ["content-md5", "digest", "etag"] {
        assert_eq!(
            digest.header(gone),
            None,
            "{gone} describes the app's bytes"
        );
    }
    let head = raw(
        &server,
        "HEAD /digest HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        head.header("content-length"),
        Some(body_len.to_string().as_str()),
        "HEAD reports the length GET sends"
    );

    // A stuck app: 504 after --response-timeout, with a page for browsers.
    let start = Instant::now();
    let stuck = get("/stuck");
    assert_eq!(stuck.status, 504);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        stuck.text().contains("--response-timeout"),
        "{}",
        stuck.text()
    );
}

#[test]
fn live_reload_listeners_are_capped() {
    let server = start_echo();
    let mut streams = Vec::new();
    for _ in 0..256 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(b"GET /__manage/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        streams.push(s);
    }
    // Each of them got its stream.
    for s in &mut streams {
        let mut buf = [0u8; 12];
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    let one_more = raw(
        &server,
        "GET /__manage/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(one_more.status, 503);
    drop(streams);
    // Closed tabs free their places.
    let again = crate::support::eventually(Duration::from_secs(10), || {
        let mut s = TcpStream::connect(&server.addr).ok()?;
        s.write_all(b"GET /__manage/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut buf = [0u8; 12];
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.read_exact(&mut buf).ok()?;
        (&buf == b"HTTP/1.1 200").then_some(())
    });
    assert!(again.is_some());
}

#[test]
fn many_open_connections_do_not_starve_new_requests() {
    use std::os::unix::process::CommandExt as _;
    // A low soft limit, as shells often set (1,024), made small here.
    let server = Start::new(fixtures::echo_app())
        .command(|cmd| {
            // SAFETY: setrlimit between fork and exec is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                    limit.rlim_cur = 128;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                    Ok(())
                });
            }
        })
        .ready();
    let addr = server.addr.clone();
    // More idle connections than the soft limit allows descriptors.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert_eq!(idle.len(), 200);
    // manage has taken them all (it raised its soft limit to do so).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.proc.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let accepted =
        crate::support::eventually(Duration::from_secs(10), || (fds() >= 200).then_some(()));
    assert!(
        accepted.is_some(),
        "manage holds only {} descriptors",
        fds()
    );
    let start = Instant::now();
    let answer = request(
        &addr,
        "GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.as_ref().is_ok_and(|r| r.status == 200),
        "a new request after 200 idle connections: {answer:?}"
    );
    // Not only once the idle ones time out (30 s): at once.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    drop(idle);
}

#[test]
fn a_client_that_stops_reading_a_proxied_response_loses_its_connection() {
    let server = pages(&[]);
    let mut client = TcpStream::connect(&server.addr).unwrap();
    client
        .write_all(b"GET /endless HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Take nothing for longer than the send timeout...
    std::thread::sleep(SEND_TIMEOUT * 3);
    // ...then what the kernels and hyper buffered drains, and the stream
    // ends: manage closed the connection instead of waiting forever.
    let drained = read_until_closed(&mut client, 256 << 20, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the response still flows after the send timeout: {e}"));
    eprintln!("drained {drained} bytes buffered before the connection closed");
    // The proxy still serves everyone else.
    assert_eq!(
        raw(
            &server,
            "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .status,
        200
    );
}
