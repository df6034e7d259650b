//! `manage migrate`, `makemigrations`, `showmigrations` and `dbshell` on a
//! real SQLite file and a real PostgreSQL cluster of the test's own.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::manage;
use crate::support::postgres::Postgres;

/// A cargo project that is not a scaffold, with sqlx's simple-style
/// migrations in a directory of its own choosing.
fn plain_project(settings: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plain");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("db/migrations")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.manage]\nmigrations-dir = \"db/migrations\"\n{settings}"
        ),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(
        dir.join("db/migrations/1_create_items.sql"),
        "CREATE TABLE items (name TEXT NOT NULL);\n",
    )
    .unwrap();
    (tmp, dir)
}

fn run(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    manage()
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(args)
        .assert()
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

#[test]
fn sqlite_migrations_in_any_sqlx_directory() {
    let (_tmp, dir) = plain_project("");
    let db = dir.join("db.sqlite3");

    // Reading creates nothing.
    let shown = run(&dir, &["showmigrations"]).success();
    assert_eq!(stdout(&shown), "[ ] 1_create_items\n");
    assert!(!db.exists(), "showmigrations created the database");

    run(&dir, &["migrate"])
        .success()
        .stderr(predicate::str::contains("Applied 1_create_items"));
    assert!(db.exists());
    run(&dir, &["migrate"])
        .success()
        .stderr(predicate::str::contains("no migrations to apply"));

    // A directory of simple migrations gets another simple one.
    run(&dir, &["makemigrations", "add_price"])
        .success()
        .stderr(predicate::str::contains("_add_price.sql"));
    let new = fs::read_dir(dir.join("db/migrations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_add_price.sql"))
        .expect("the new migration");
    fs::write(&new, "ALTER TABLE items ADD COLUMN price INTEGER;\n").unwrap();
    let shown = run(&dir, &["showmigrations"]).success();
    assert!(
        stdout(&shown).contains("[X] 1_create_items\n[ ] 2"),
        "{}",
        stdout(&shown)
    );
    run(&dir, &["migrate"])
        .success()
        .stderr(predicate::str::contains("_add_price"));

    // An applied migration that changed stops everything.
    fs::write(
        dir.join("db/migrations/1_create_items.sql"),
        "CREATE TABLE items (name TEXT);\n",
    )
    .unwrap();
    run(&dir, &["migrate"]).failure().stderr(
        predicate::str::contains("migration `1_create_items` was changed after it was applied")
            .and(predicate::str::contains("makemigrations")),
    );
    let shown = run(&dir, &["showmigrations"]).failure();
    assert!(stdout(&shown).contains("[!] 1_create_items"));

    run(&dir, &["makemigrations", "bad name"])
        .failure()
        .stderr(predicate::str::contains("is not a migration name"));
}

#[test]
fn dbshell_runs_the_client_or_says_it_is_missing() {
    let (_tmp, dir) = plain_project("");
    run(&dir, &["migrate"]).success();
    // A PATH with cargo (for `cargo metadata`) and no sqlite3.
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let only_cargo = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        which(&cargo).expect("cargo on PATH"),
        only_cargo.path().join("cargo"),
    )
    .unwrap();
    manage()
        .current_dir(&dir)
        .env("PATH", only_cargo.path())
        .args(["dbshell"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("`sqlite3` is not installed")
                .and(predicate::str::contains("apt-get install sqlite3")),
        );
    if which(Path::new("sqlite3")).is_some() {
        let out = run(
            &dir,
            &[
                "dbshell",
                "--",
                "SELECT name FROM sqlite_master WHERE name = 'items'",
            ],
        )
        .success();
        assert_eq!(stdout(&out), "items\n");
    }
}

fn which(program: &Path) -> Option<PathBuf> {
    if program.is_absolute() {
        return Some(program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

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

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let (_tmp, dir) = plain_project("database-url = \"postgres://app:pw@127.0.0.1:1/app\"\n");
    run(&dir, &["migrate"]).failure().stderr(
        predicate::str::contains(
            "cannot connect to the database `postgres://app:***@127.0.0.1:1/app`",
        )
        .and(predicate::str::contains(
            "database-url in [package.metadata.manage]",
        ))
        .and(predicate::str::contains("help: start PostgreSQL")),
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
