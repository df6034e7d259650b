//! `migrate` creates the table; a POST to /notes writes a row that a GET
//! reads back, also after a restart.

mod support;

use std::process::Command;

use support::{BIN, TempDir, command, get, request, start};

fn migrate(dir: &TempDir) -> String {
    let out = Command::new(BIN)
        .arg("migrate")
        .current_dir(&dir.0)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run migrate");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_posted_note_is_read_back_after_a_restart() {
    let dir = TempDir::new();
    assert!(migrate(&dir).contains("applied"));
    assert!(migrate(&dir).contains("no migrations to apply"));

    let server = start(command(&dir, None));
    let posted = request(&server.addr, "POST", "/notes", "body=hello+%3Cworld%3E");
    assert!(posted.starts_with("HTTP/1.1 303"), "{posted}");
    drop(server);

    let server = start(command(&dir, None));
    let page = get(&server.addr, "/notes");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<li>hello &lt;world&gt;</li>"), "{page}");
}

#[test]
fn an_empty_note_is_refused() {
    let dir = TempDir::new();
    migrate(&dir);
    let server = start(command(&dir, None));
    let response = request(&server.addr, "POST", "/notes", "body=+");
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}
