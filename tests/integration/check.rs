//! `manage check [--deploy]` (#13): every check is triggered by one
//! project and not by the baseline, a freshly generated project with its
//! deploy/ generated and its static files collected; exit codes follow
//! `--fail-level`; `--format json`; `silenced-checks`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::{generate, manage};

fn manage_in(dir: &Path) -> std::process::Command {
    let mut cmd = manage();
    // Defaults resolve in the project's own target directory, and no
    // SECRET_KEY leaks in from the caller.
    cmd.current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("SECRET_KEY");
    cmd
}

/// A project check finds nothing in, even at `--fail-level info`.
fn baseline() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = generate("checked");
    manage_in(&dir).arg("deploy-config").assert().success();
    manage_in(&dir).arg("collectstatic").assert().success();
    (tmp, dir)
}

/// The ids `check --deploy --format json` reports.
fn ids(dir: &Path, env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut cmd = manage_in(dir);
    cmd.args([
        "check",
        "--deploy",
        "--format",
        "json",
        "--fail-level",
        "error",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            for field in ["message", "why", "fix"] {
                assert!(!m[field].as_str().unwrap().is_empty(), "{m}");
            }
            m["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {file}");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// A setting added to `[package.metadata.manage]` (or `.deploy`).
fn setting(dir: &Path, table: &str, line: &str) {
    edit(
        dir,
        "Cargo.toml",
        &format!("{table}\n"),
        &format!("{table}\n{line}\n"),
    );
}

const MANAGE: &str = "[package.metadata.manage]";
const DEPLOY: &str = "[package.metadata.manage.deploy]";

/// deploy/ afresh: files a setting no longer produces would stay (W007).
fn regenerate(dir: &Path) {
    fs::remove_dir_all(dir.join("deploy")).unwrap();
    manage_in(dir).arg("deploy-config").assert().success();
}

#[test]
fn check_each_finding_has_a_project_that_triggers_it() {
    let (_tmp, clean) = baseline();
    assert_eq!(ids(&clean, &[]), BTreeSet::new(), "the baseline is clean");
    manage_in(&clean)
        .args(["check", "--deploy", "--fail-level", "info"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no issues"));

    type Case = (
        &'static str,
        &'static [&'static str],
        fn(&Path) -> Vec<(String, String)>,
    );
    let cases: &[Case] = &[
        ("broken Cargo.toml", &["manage.E001"], |d| {
            fs::write(d.join("Cargo.toml"), "[package\n").unwrap();
            Vec::new()
        }),
        ("misspelt setting", &["manage.E002"], |d| {
            setting(d, MANAGE, "statc-dir = \"static\"");
            Vec::new()
        }),
        ("no binary", &["manage.E003"], |d| {
            fs::rename(d.join("src/main.rs"), d.join("src/lib.rs")).unwrap();
            Vec::new()
        }),
        ("no static dir", &["manage.E004"], |d| {
            edit(
                d,
                "Cargo.toml",
                "static-dir = \"static\"",
                "static-dir = \"nowhere\"",
            );
            Vec::new()
        }),
        ("health path", &["manage.E005"], |d| {
            edit(
                d,
                "Cargo.toml",
                "health-path = \"/healthz\"",
                "health-path = \"healthz\"",
            );
            Vec::new()
        }),
        ("static url", &["manage.E006"], |d| {
            edit(
                d,
                "Cargo.toml",
                "static-url = \"/static/\"",
                "static-url = \"static/\"",
            );
            Vec::new()
        }),
        ("invalid deploy setting", &["manage.E007"], |d| {
            edit(d, "Cargo.toml", "instances = 2", "instances = 0");
            Vec::new()
        }),
        ("build dir inside static dir", &["manage.E008"], |d| {
            setting(d, MANAGE, "static-build-dir = \"static/build\"");
            Vec::new()
        }),
        ("tls off", &["manage.W001"], |d| {
            edit(d, "Cargo.toml", "tls = \"letsencrypt\"", "tls = \"off\"");
            regenerate(d);
            Vec::new()
        }),
        ("short hsts", &["manage.W002"], |d| {
            edit(
                d,
                "Cargo.toml",
                "hsts-max-age = 63072000",
                "hsts-max-age = 3600",
            );
            regenerate(d);
            Vec::new()
        }),
        ("development secret", &["manage.W003"], |d| {
            let env = fs::read_to_string(d.join(".env")).unwrap();
            let key = env
                .lines()
                .find_map(|l| l.strip_prefix("SECRET_KEY="))
                .unwrap();
            vec![("SECRET_KEY".into(), key.into())]
        }),
        (
            "the .env secret, whatever it looks like",
            &["manage.W003"],
            |d| {
                let key = "a-long-development-secret-without-the-usual-prefix-0123456789";
                fs::write(d.join(".env"), format!("SECRET_KEY={key}\n")).unwrap();
                vec![("SECRET_KEY".into(), key.into())]
            },
        ),
        ("a strong production secret", &[], |_| {
            let key = "Zq8rT2vLk9sX4mWn7pB1cY6hJ3fD5gA0eR8tU2iO4pL7kM9nB3vC6xZ1aS5dF";
            vec![("SECRET_KEY".into(), key.into())]
        }),
        ("one instance", &["manage.W004"], |d| {
            edit(d, "Cargo.toml", "instances = 2", "instances = 1");
            regenerate(d);
            Vec::new()
        }),
        ("public app machine", &["manage.W005"], |d| {
            setting(
                d,
                DEPLOY,
                "topology = { web = \"10.0.0.10\", app = [\"203.0.113.20\"], db = \"10.0.0.30\" }",
            );
            regenerate(d);
            Vec::new()
        }),
        (
            "socket on every address",
            &["manage.W005", "manage.W007"],
            |d| {
                edit(
                    d,
                    "deploy/systemd/checked@.socket",
                    "ListenStream=127.0.0.1:%i",
                    "ListenStream=%i",
                );
                Vec::new()
            },
        ),
        ("debug build", &["manage.W006"], |d| {
            edit(
                d,
                "Cargo.toml",
                "binary = \"/opt/checked/bin/checked\"",
                "binary = \"/srv/checked/target/debug/checked\"",
            );
            regenerate(d);
            Vec::new()
        }),
        ("deploy edited by hand", &["manage.W007"], |d| {
            edit(
                d,
                "deploy/nginx/nginx.conf",
                "worker_connections 4096;",
                "worker_connections 64;",
            );
            Vec::new()
        }),
        ("not collected", &["manage.W008"], |d| {
            fs::remove_dir_all(d.join("target/staticfiles")).unwrap();
            Vec::new()
        }),
        ("collected, then changed", &["manage.W009"], |d| {
            fs::write(d.join("static/css/site.css"), "body { color: red }\n").unwrap();
            Vec::new()
        }),
        ("a migration not applied", &["manage.W010"], |d| {
            manage_in(d).arg("migrate").assert().success();
            manage_in(d)
                .args(["makemigrations", "add_tags"])
                .assert()
                .success();
            Vec::new()
        }),
        ("no deploy dir", &["manage.I001"], |d| {
            fs::remove_dir_all(d.join("deploy")).unwrap();
            Vec::new()
        }),
    ];
    for (what, expected, make) in cases {
        let (_tmp, dir) = baseline();
        let env = make(&dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let found = ids(&dir, &env);
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(found, expected, "{what}");
    }
}

#[test]
fn check_exit_codes_follow_the_fail_level_and_silenced_checks() {
    let (_tmp, dir) = baseline();
    edit(&dir, "Cargo.toml", "instances = 2", "instances = 1");
    regenerate(&dir);
    // Plain check has no production findings; --deploy warns.
    manage_in(&dir).arg("check").assert().success();
    manage_in(&dir)
        .args(["check", "--deploy"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "manage.W004 (warning): one app instance",
        ))
        .stdout(predicate::str::contains("    why: "))
        .stdout(predicate::str::contains("    fix: set `instances = 2`"));
    manage_in(&dir)
        .args(["check", "--deploy", "--fail-level", "warning"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 at `warning` or above"));
    setting(&dir, MANAGE, "silenced-checks = [\"manage.W004\"]");
    manage_in(&dir)
        .args(["check", "--deploy", "--fail-level", "info"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no issues (1 silenced)"));

    // An error fails at the default level; usage errors are 2.
    edit(
        &dir,
        "Cargo.toml",
        "health-path = \"/healthz\"",
        "health-path = \"x\"",
    );
    manage_in(&dir).arg("check").assert().code(1);
    manage_in(&dir)
        .args(["check", "--fail-level", "fatal"])
        .assert()
        .code(2);
}
