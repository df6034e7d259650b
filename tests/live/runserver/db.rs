//! runserver and the database (SQLite, the scaffold's default): pending
//! migrations are reported in the terminal, on a banner and at
//! /__manage/errors; `--migrate` applies them; a note written through
//! runserver is read back after a restart.

use crate::support::runserver::{Start, FIRST_BUILD};
use crate::support::{generate, get, post_form, request};

const MIGRATION: &str = "20260101000000_create_notes";

fn page(addr: &str, path: &str) -> (u16, String) {
    let response = request(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        ),
    )
    .unwrap();
    (response.status, response.text())
}

#[test]
fn runserver_reports_then_applies_migrations_and_the_data_survives_a_restart() {
    let (tmp, dir) = generate("notesite");

    // Pending: said in the terminal before the app starts, then a banner.
    let server = Start::new((tmp, dir)).shared_target().spawn();
    server.wait_for_line("1 unapplied migration", FIRST_BUILD);
    let swapped = server.wait_swapped(FIRST_BUILD);
    assert_eq!(swapped["restarted"], false, "{swapped}");
    let (status, home) = page(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(
        home.contains("the database has unapplied migrations"),
        "{home}"
    );
    let (_, errors) = page(&server.addr, "/__manage/errors");
    assert!(
        errors.contains(MIGRATION) && errors.contains("manage migrate"),
        "{errors}"
    );
    // The table is missing, and the app says what to do.
    let notes = get(&server.addr, "/notes").unwrap();
    assert_eq!(notes.status, 500);
    assert!(notes.text().contains("manage migrate"), "{}", notes.text());
    let (tmp, dir) = server.stop();

    // --migrate applies them before the start; the banner is gone.
    let server = Start::new((tmp, dir))
        .shared_target()
        .args(&["--migrate"])
        .spawn();
    server.wait_for_line(&format!("Migrated {MIGRATION}"), FIRST_BUILD);
    server.wait_swapped(FIRST_BUILD);
    let (_, home) = page(&server.addr, "/");
    assert!(!home.contains("unapplied migrations"), "{home}");
    let form = "body=written+through+runserver";
    let posted = post_form(&server.addr, "/notes", form).unwrap();
    assert_eq!(posted.status, 303, "{}", posted.text());
    let (tmp, dir) = server.stop();
    assert!(
        dir.join("db.sqlite3").is_file(),
        "the database is in the project"
    );

    // A restart (without --migrate) keeps the data and says nothing.
    let server = Start::new((tmp, dir)).shared_target().ready();
    let (status, notes) = page(&server.addr, "/notes");
    assert_eq!(status, 200);
    assert!(
        notes.contains("<li>written through runserver</li>"),
        "{notes}"
    );
    // What runserver says of migrations comes before the app starts.
    let said = server.lines_with("unapplied");
    assert!(said.is_empty(), "{said:?}");
}
