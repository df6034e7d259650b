//! `manage runserver` against the std-only echo fixture: refusals, the
//! public-address warning, forwarding, streaming and swaps. The same
//! against builds of a generated project: `tests/live/runserver/reload.rs`.

use std::fs;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::fixtures::echo_app;
use crate::support::runserver::{start_echo, Start, REBUILD};
use crate::support::{self, eventually, get, manage};

#[test]
fn binding_a_public_address_warns_that_this_is_a_dev_server() {
    let server = Start::new(echo_app())
        .addr("0.0.0.0:0")
        .args(&["--noreload"])
        .ready();
    // The terminal names the address as bound, and warns.
    let port = server.port();
    server.wait_for_line(
        &format!("Serving `echo-app` at http://0.0.0.0:{port}/"),
        Duration::from_secs(5),
    );
    server.wait_for_line(
        "development server: do not use it in production",
        Duration::from_secs(5),
    );
    // Reached on loopback at the port it was given.
    assert_eq!(get(&server.addr, "/version").unwrap().status, 200);
}

#[test]
fn the_address_is_held_while_cargo_resolves_the_dependencies() {
    use std::os::unix::fs::PermissionsExt as _;
    let (tmp, dir) = echo_app();
    // A cargo whose dependency resolution takes 2 s (a first run that
    // updates the index); everything else is the real cargo.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let slow = tmp.path().join("slow-cargo");
    fs::write(
        &slow,
        format!(
            "#!/bin/sh\n\
             case \" $* \" in *\" metadata \"*)\n\
               case \" $* \" in *\" --no-deps \"*) ;; *) sleep 2 ;; esac ;;\n\
             esac\n\
             exec '{cargo}' \"$@\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&slow, fs::Permissions::from_mode(0o755)).unwrap();
    let server = Start::new((tmp, dir))
        .env("CARGO", slow.to_str().unwrap())
        .spawn();
    let seen = |name: &str| server.events().iter().any(|e| e["event"] == name);
    assert!(!seen("serving"), "{}", server.events_text());
    // Sent while the project is still being read: it waits, then the
    // first build answers it.
    let r = get(&server.addr, "/version").unwrap();
    assert_eq!((r.status, r.text()), (200, "v1".into()));
    assert!(
        seen("serving") && seen("swapped"),
        "{}",
        server.events_text()
    );
}

#[test]
fn refusals_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    // Not a cargo project.
    manage()
        .current_dir(tmp.path())
        .arg("runserver")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("could not read a cargo project")
                .and(predicate::str::contains("help:")),
        );

    // A library has no binary to run.
    let lib = tmp.path().join("alib");
    fs::create_dir(&lib).unwrap();
    fs::write(
        lib.join("Cargo.toml"),
        "[package]\nname = \"alib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::create_dir(lib.join("src")).unwrap();
    fs::write(lib.join("src/lib.rs"), "").unwrap();
    manage()
        .current_dir(&lib)
        .arg("runserver")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "package `alib` has no binary target to run",
        ));

    // Bad addresses.
    let (_t, dir) = support::generate("rs-refuse");
    manage()
        .current_dir(&dir)
        .args(["runserver", "not-a-port!"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a valid port"));
    manage()
        .current_dir(&dir)
        .args(["runserver", "99999"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a valid port"));

    // A port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    manage()
        .current_dir(&dir)
        .args(["runserver", &port])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is already in use"));
}

#[test]
fn requests_pass_through_with_forwarding_headers_and_without_hop_by_hop_ones() {
    let server = start_echo();
    let body = "hello body";
    let response = support::request(
        &server.addr,
        &format!(
            "POST /echo?q=1 HTTP/1.1\r\nHost: localhost\r\nX-Custom: yes\r\n\
             Connection: close, X-Drop-Me\r\nX-Drop-Me: secret\r\nKeep-Alive: timeout=5\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert_eq!(response.status, 200);
    let echoed = response.text().to_ascii_lowercase();
    assert!(echoed.starts_with("post /echo?q=1 http/1.1"), "{echoed}");
    for present in [
        "x-custom: yes",
        "host: localhost",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: localhost",
    ] {
        assert!(echoed.contains(present), "{present} missing in:\n{echoed}");
    }
    for absent in ["x-drop-me", "keep-alive: timeout"] {
        assert!(!echoed.contains(absent), "{absent} leaked into:\n{echoed}");
    }
    assert!(echoed.ends_with(body), "{echoed}");
    assert_eq!(
        response.header("x-hop"),
        None,
        "hop-by-hop response header kept"
    );
}

#[test]
fn streamed_responses_arrive_as_they_are_produced() {
    use std::io::{Read, Write};
    let server = start_echo();
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&seen).contains("chunk 0") {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("chunk 4"), "{text}");
    let first = first.expect("first chunk");
    // The app spends 800 ms producing five chunks; a buffering proxy would
    // deliver the first with the last.
    assert!(
        total - first >= Duration::from_millis(500),
        "first chunk at {first:?} of {total:?}"
    );
}

#[test]
fn a_swap_waits_for_requests_in_flight_on_the_old_app() {
    let server = start_echo();
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || get(&addr, "/slow"));
    server.wait_for_line("slow request received", Duration::from_secs(10));
    // The echo app dies at once on SIGTERM: only draining saves the request.
    server.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    let swapped = eventually(REBUILD, || {
        get(&server.addr, "/version")
            .ok()
            .filter(|r| r.text() == "v2")
    });
    assert!(swapped.is_some(), "the new build never served");
    let slow = slow.join().unwrap().expect("the slow request finished");
    assert_eq!(slow.status, 200);
    assert_eq!(slow.text(), "slow v1");
}
