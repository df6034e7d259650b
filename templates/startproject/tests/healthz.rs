//! /healthz says whether the app can serve: 200 with its database, 503
//! while the database is unreachable; `NAME healthcheck` asks it.

mod support;

use support::{TempDir, command, get, start};

#[test]
fn healthz_answers_200_with_the_default_sqlite_database() {
    let dir = TempDir::new();
    let server = start(command(&dir, None));
    let response = get(&server.addr, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        dir.0.join("db.sqlite3").exists(),
        "the SQLite file is created"
    );
}

#[test]
fn healthz_answers_503_while_the_database_is_unreachable() {
    let dir = TempDir::new();
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://nobody:secret@127.0.0.1:1/nothing";
    let server = start(command(&dir, Some(url)));
    let response = get(&server.addr, "/healthz");
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    // The rest of the site still answers.
    assert!(get(&server.addr, "/").starts_with("HTTP/1.1 200"));
}

#[test]
fn unknown_paths_answer_404() {
    let dir = TempDir::new();
    let server = start(command(&dir, None));
    let response = get(&server.addr, "/no-such-page");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

/// `NAME healthcheck` (a container's HEALTHCHECK) against the server at
/// `port`, with `env` set: its exit code and what it printed.
fn healthcheck(port: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(support::BIN);
    cmd.arg("healthcheck")
        .env("HOST", "127.0.0.1")
        .env("PORT", port)
        .env_remove("HEALTH_PATH");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("run healthcheck");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().expect("an address with a port")
}

#[test]
fn healthcheck_exits_0_when_the_server_answers_200() {
    let dir = TempDir::new();
    let server = start(command(&dir, None));
    let port = port_of(&server.addr);
    assert_eq!(healthcheck(port, &[]), (Some(0), String::new()));
    // A server bound to every address is asked on loopback.
    assert_eq!(healthcheck(port, &[("HOST", "0.0.0.0")]).0, Some(0));
}

#[test]
fn healthcheck_exits_1_with_the_reason_otherwise() {
    let dir = TempDir::new();
    let url = "postgres://nobody:secret@127.0.0.1:1/nothing";
    let server = start(command(&dir, Some(url)));
    let port = port_of(&server.addr).to_owned();
    let port = port.as_str();
    let (code, text) = healthcheck(port, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("/healthz answered `HTTP/1.1 503 Service Unavailable`"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let (code, text) = healthcheck(port, &[("HEALTH_PATH", "/no-such-page")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("/no-such-page answered `HTTP/1.1 404 Not Found`"),
        "{text}"
    );

    drop(server);
    let started = std::time::Instant::now();
    let (code, text) = healthcheck(port, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("unhealthy: cannot connect to 127.0.0.1:"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));

    let (code, text) = healthcheck("http", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("PORT must be a port number, not `http`"),
        "{text}"
    );
}

/// A server that accepts and never answers fails the check in about 3 s.
#[test]
fn healthcheck_gives_up_after_3_seconds() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port().to_string();
    let started = std::time::Instant::now();
    let (code, text) = healthcheck(&port, &[]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no answer from http://127.0.0.1:"), "{text}");
    assert!(
        took >= std::time::Duration::from_millis(2900) && took < std::time::Duration::from_secs(5),
        "{took:?}"
    );
}
