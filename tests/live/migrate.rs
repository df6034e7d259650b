//! `manage migrate` on a real PostgreSQL cluster of the test's own: plain
//! and TLS-only.

use std::fs;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::manage;
use crate::support::migrations::{plain_project, stdout};
use crate::support::postgres::Postgres;

#[test]
fn postgres_migrations_apply_once_and_a_failing_one_leaves_nothing() {
    let pg = Postgres::start();
    let url = pg.create_app_database("plain", "app-secret");
    let (_tmp, dir) = plain_project("");
    let with_url = |args: &[&str]| {
        manage()
            .current_dir(&dir)
            .env("DATABASE_URL", &url)
            .args(args)
            .assert()
    };

    let shown = with_url(&["showmigrations"]).success();
    assert_eq!(stdout(&shown), "[ ] 1_create_items\n");
    with_url(&["migrate"])
        .success()
        .stderr(predicate::str::contains("Applied 1_create_items"));
    let shown = with_url(&["showmigrations"]).success();
    assert_eq!(stdout(&shown), "[X] 1_create_items\n");
    // A second migrate is a no-op.
    with_url(&["migrate"])
        .success()
        .stderr(predicate::str::contains("no migrations to apply"));
    assert_eq!(
        pg.psql("plain", "SELECT count(*) FROM _sqlx_migrations"),
        "1\n"
    );

    // A migration whose second statement fails: the first one's table
    // must not exist afterwards (one transaction), nor the record.
    fs::write(
        dir.join("db/migrations/2_half.sql"),
        "CREATE TABLE half (id INTEGER);\nALTER TABLE no_such_table ADD COLUMN x INTEGER;\n",
    )
    .unwrap();
    with_url(&["migrate"]).failure().stderr(
        predicate::str::contains("migration `2_half` failed").and(predicate::str::contains(
            "relation \"no_such_table\" does not exist",
        )),
    );
    assert_eq!(
        pg.psql(
            "plain",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"
        ),
        "0\n"
    );
    assert_eq!(
        pg.psql("plain", "SELECT count(*) FROM _sqlx_migrations"),
        "1\n"
    );
    let shown = with_url(&["showmigrations"]).success();
    assert_eq!(stdout(&shown), "[X] 1_create_items\n[ ] 2_half\n");

    // Fixed, it applies; makemigrations + migrate applies a new one.
    fs::write(
        dir.join("db/migrations/2_half.sql"),
        "CREATE TABLE half (id INTEGER);\n",
    )
    .unwrap();
    with_url(&["makemigrations", "add_price"]).success();
    let new = fs::read_dir(dir.join("db/migrations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_add_price.sql"))
        .unwrap();
    fs::write(&new, "ALTER TABLE items ADD COLUMN price INTEGER;\n").unwrap();
    with_url(&["migrate"]).success().stderr(
        predicate::str::contains("Applied 2_half").and(predicate::str::contains("_add_price")),
    );
    assert_eq!(
        pg.psql(
            "plain",
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'price'"
        ),
        "1\n"
    );

    // dbshell: psql on the same database, the password not in its argv.
    if crate::support::postgres::bin("psql").is_some() {
        let out = with_url(&[
            "dbshell",
            "--",
            "-At",
            "-c",
            "SELECT count(*) FROM _sqlx_migrations",
        ])
        .success();
        assert_eq!(stdout(&out), "3\n");
    }

    // A wrong password and an unreachable server are told apart.
    let wrong = pg.url("plain", "wrong", "plain");
    manage()
        .current_dir(&dir)
        .args(["migrate", "--database-url", &wrong])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("cannot connect to the database `postgres://plain:***@")
                .and(predicate::str::contains("password authentication failed"))
                .and(predicate::str::contains("wrong").not()),
        );
}

/// A PostgreSQL that takes TLS connections only (as the db machine's
/// `hostssl` lines do): `sslmode=require` and `verify-ca` with the CA get
/// through, a plain connection is refused.
#[test]
fn postgres_that_takes_tls_only_is_migrated_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = crate::support::deploy::Certs::make(&tmp.path().join("certs"));
    let pg = Postgres::start_in(
        Vec::new(),
        "127.0.0.1",
        crate::support::free_port(),
        "ssl = on\n",
        Some("hostssl all all 127.0.0.1/32 scram-sha-256\n"),
        Some((&certs.chain, &certs.key)),
    );
    let url = pg.create_app_database("plain", "app-secret");
    let (_tmp, dir) = plain_project("");
    let migrate = |query: &str| {
        manage()
            .current_dir(&dir)
            .env("DATABASE_URL", format!("{url}?{query}"))
            .arg("migrate")
            .assert()
    };
    migrate("sslmode=disable")
        .failure()
        .stderr(predicate::str::contains("no encryption").or(predicate::str::contains("pg_hba")));
    migrate("sslmode=require")
        .success()
        .stderr(predicate::str::contains("Applied 1_create_items"));
    let ca = certs.ca.display().to_string();
    migrate(&format!("sslmode=verify-ca&sslrootcert={ca}"))
        .success()
        .stderr(predicate::str::contains("no migrations to apply"));
}
