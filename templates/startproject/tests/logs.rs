//! `LOG_FORMAT=json`: every line on stderr is one JSON object, a request's
//! lines carry its id, there is one access line per request, lines are
//! written while the server runs, and the last ones are out when the
//! process exits after SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::{BIN, TempDir};

/// One GET with `extra` headers; the response's status line and its
/// `x-request-id`.
fn get(addr: &str, path: &str, extra: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.lines().next().unwrap_or_default().to_owned();
    let id = response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-request-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no X-Request-ID in {response}"));
    (status, id)
}

#[test]
fn json_lines_carry_the_request_id_and_are_all_out_at_exit() {
    let dir = TempDir::new();
    let mut child = Command::new(BIN)
        .current_dir(&dir.0)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("ACCESS_LOG")
        .env_remove("LISTEN_FDS")
        .env_remove("DATABASE_URL")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            lines.push(line);
        }
        lines
    });
    let addr = loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) else {
            let _ = child.kill();
            panic!("the server never said where it listens");
        };
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.split('"').next().unwrap_or_default().to_owned();
        }
    };

    // Loopback is a trusted proxy by default, so its id is kept.
    let (status, kept) = get(&addr, "/", "X-Request-ID: from-the-proxy-1\r\n");
    assert!(status.contains("200"), "{status}");
    assert_eq!(kept, "from-the-proxy-1");
    let (status, made) = get(&addr, "/no-such-page", "");
    assert!(status.contains("404"), "{status}");
    assert_eq!(made.len(), 32, "a new id: {made}");

    // Batched, but written while the server runs, not held until exit:
    // both access lines arrive before it is asked to stop.
    let mut access_seen = 0;
    while access_seen < 2 {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) else {
            let _ = child.kill();
            panic!("the access lines were not written while the server ran");
        };
        access_seen += usize::from(line.contains("\"target\":\"access\""));
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let exit = child.wait().expect("wait for the server");
    assert!(exit.success(), "SIGTERM ends it with 0: {exit:?}");
    let lines = reader.join().expect("the reader thread");

    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect();
    for line in &parsed {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let access: Vec<&Value> = parsed.iter().filter(|l| l["target"] == "access").collect();
    assert_eq!(access.len(), 2, "one access line per request: {lines:#?}");
    let of = |id: &str| {
        access
            .iter()
            .find(|l| l["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line with request id {id}: {lines:#?}"))
    };
    assert_eq!(of(&kept)["status"], 200);
    assert_eq!(of(&kept)["span"]["path"], "/");
    assert_eq!(of(&made)["status"], 404);
    assert!(
        of(&made)["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"GET /no-such-page HTTP/1.1\" 404"))
    );
    assert!(of(&made)["duration_ms"].is_number());
    // Written in the last moments before exit: the batch was flushed.
    let last = parsed.last().expect("some lines");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("finishing in-flight requests")),
        "the last line is the one before exit: {last}"
    );
}
