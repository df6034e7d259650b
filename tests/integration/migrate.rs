//! `manage migrate`, `makemigrations`, `showmigrations` and `dbshell` on a
//! real SQLite file. On PostgreSQL: `tests/live/migrate.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::manage;
use crate::support::migrations::{plain_project, stdout};

fn run(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    manage()
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(args)
        .assert()
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
