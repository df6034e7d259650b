//! /healthz says whether the app can serve: 200 with its database, 503
//! while the database is unreachable.

mod support;

use support::{command, get, start, TempDir};

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
