//! deploy-config wires the database (#11): SQLite in the state directory
//! by default, a local PostgreSQL with `--database postgres`, PostgreSQL on
//! the db machine over TLS with a topology; the password in no unit and no
//! URL; a oneshot migrate unit that every instance requires.

use std::fs;
use std::path::Path;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::{generate, manage};

fn deploy(dir: &Path, out: &str, args: &[&str]) -> std::path::PathBuf {
    manage()
        .current_dir(dir)
        .args(["deploy-config", "--out", out])
        .args(args)
        .assert()
        .success();
    dir.join(out)
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// No generated file has a URL with a password in it.
fn no_password_in(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            no_password_in(&path);
        } else {
            let text = read(&path);
            for line in text.lines().filter(|l| l.contains("postgres://")) {
                let after = line.split("postgres://").nth(1).unwrap();
                let userinfo = after.split('@').next().unwrap();
                assert!(
                    !userinfo.contains(':') || !after.contains('@'),
                    "a password in {}: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_database_is_wired_and_its_password_is_a_credential() {
    let (_tmp, dir) = generate("dbsite");

    // One machine, default: SQLite in the state directory.
    let out = deploy(&dir, "one", &[]);
    let unit = read(out.join("systemd/dbsite@.service"));
    assert!(unit.contains("Environment=DATABASE_URL=sqlite:///var/lib/dbsite/db.sqlite3?mode=rwc"));
    assert!(unit.contains("StateDirectory=dbsite"));
    assert!(unit.contains("Requires=dbsite-migrate.service"));
    assert!(unit.contains("After=dbsite@%i.socket dbsite-migrate.service"));
    assert!(!unit.contains("LoadCredential"));
    let migrate = read(out.join("systemd/dbsite-migrate.service"));
    assert!(migrate.contains("Type=oneshot\nExecStart=/opt/dbsite/bin/dbsite migrate"));
    let install = read(out.join("install.sh"));
    assert!(install.contains("'dbsite-migrate.service'"));
    assert!(!install.contains("CREATE ROLE"));

    // One machine with a local PostgreSQL.
    let out = deploy(&dir, "local", &["--database", "postgres"]);
    let unit = read(out.join("systemd/dbsite@.service"));
    assert!(unit.contains("Environment=DATABASE_URL=postgres://dbsite@127.0.0.1:5432/dbsite\n"));
    assert!(unit.contains("LoadCredential=db-password:/etc/dbsite/db-password"));
    let install = read(out.join("install.sh"));
    assert!(install.contains(" postgresql)"), "postgresql is installed");
    assert!(install.contains("CREATE ROLE dbsite LOGIN"));
    assert!(install.contains("SET password_encryption = 'scram-sha-256'"));
    assert!(install.contains("CREATE DATABASE dbsite OWNER dbsite"));
    // The role exists before the migrations run.
    assert!(install.find("CREATE ROLE").unwrap() < install.find("dbsite-migrate.service").unwrap());
    no_password_in(&out);

    // Three machines: PostgreSQL on db, over TLS only.
    let out = deploy(
        &dir,
        "three",
        &[
            "--web",
            "10.0.0.10",
            "--app",
            "10.0.0.20,10.0.0.21",
            "--db",
            "10.0.0.30",
        ],
    );
    let unit = read(out.join("app-1/systemd/dbsite@.service"));
    assert!(unit.contains(
        "Environment=DATABASE_URL=postgres://dbsite@10.0.0.30:5432/dbsite?sslmode=require"
    ));
    assert!(unit.contains("LoadCredential=db-password:/etc/dbsite/db-password"));
    let hba = read(out.join("db-1/postgres/pg_hba.conf"));
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules.len(), 2, "{hba}");
    assert!(
        rules
            .iter()
            .all(|l| l.starts_with("hostssl ") && l.ends_with("scram-sha-256")),
        "{hba}"
    );
    assert!(read(out.join("db-1/postgres/dbsite.conf")).contains("ssl = on"));
    assert!(
        read(out.join("db-1/postgres/dbsite-network.conf")).contains("After=network-online.target")
    );
    let db_install = read(out.join("db-1/install.sh"));
    assert!(db_install.contains("CREATE DATABASE dbsite OWNER dbsite"));
    assert!(db_install.contains("systemctl reload postgresql"));
    let app_install = read(out.join("app-1/install.sh"));
    assert!(app_install.contains("is missing: copy it from the db machine"));
    assert!(!app_install.contains("CREATE ROLE"));
    no_password_in(&out);

    // SQLite cannot be the three-machine layout's database.
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--out", "bad", "--database", "sqlite"])
        .args([
            "--web",
            "10.0.0.10",
            "--app",
            "10.0.0.20",
            "--db",
            "10.0.0.30",
        ])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("`database` = `sqlite`")
                .and(predicate::str::contains("use `postgres`")),
        );
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--out", "bad", "--database", "mysql"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is `sqlite` or `postgres`"));
}
