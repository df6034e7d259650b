//! `targets` and the container target's settings: which files each target
//! writes and where, `--only` and `--check` across roots, every bad value
//! refused with its setting named and nothing written, and compose.yaml
//! accepted by docker-compose. The image itself is built and run in
//! `deploy_container`, the manifests in `deploy_kubernetes`.

use std::fs;
use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::deploy::{run_ok, site};
use crate::support::{manage, tree};

/// Puts `keys` at the top of `[package.metadata.manage.deploy]` and
/// `tables` at the end of Cargo.toml.
fn set_deploy_settings(project: &Path, keys: &str, tables: &str) {
    let manifest = project.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let header = "[package.metadata.manage.deploy]\n";
    assert!(
        text.contains(header),
        "no deploy table in {}",
        manifest.display()
    );
    // The scaffold's own `targets = ["vm"]` gives way.
    let text = text.replace("targets = [\"vm\"]\n", "");
    let text = text.replace(header, &format!("{header}{keys}\n")) + "\n" + tables + "\n";
    fs::write(manifest, text).unwrap();
}

#[test]
fn each_target_writes_its_files_and_only_adds_the_target_it_names() {
    let s = site("shop");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--domain", "example.com"])
        .args(["--target", "container"])
        .assert()
        .success();
    let out = s.project.join("deploy");
    assert_eq!(
        tree(&out),
        [
            "README.md",
            "container/",
            "container/app.env.example",
            "container/compose.yaml",
            "container/nginx/",
            "container/nginx/nginx.conf",
            "container/nginx/shop/",
            "container/nginx/shop/sites/",
            "container/nginx/shop/sites/http.conf",
            "container/nginx/shop/sites/https.conf",
            "container/nginx/shop/snippets/",
            "container/nginx/shop/snippets/proxy.conf",
            "container/nginx/shop/snippets/security-headers.conf",
        ]
    );
    // The build context's root is the workspace root.
    assert!(s.project.join("Dockerfile").is_file());
    assert!(s.project.join(".dockerignore").is_file());

    // In its container nginx logs to its output, reaches the instances by
    // name and has no brotli module.
    let conf = fs::read_to_string(out.join("container/nginx/nginx.conf")).unwrap();
    assert!(conf.contains("access_log /dev/stdout shop;"), "{conf}");
    assert!(conf.contains("server app-1:8000 max_fails=1 fail_timeout=1s resolve;"));
    assert!(conf.contains("server app-2:8000"));
    assert!(!conf.contains("brotli"));
    // nginx:1.28 speaks `http2 on`.
    let https = fs::read_to_string(out.join("container/nginx/shop/sites/https.conf")).unwrap();
    assert!(https.contains("http2 on;"), "{https}");

    // --only kubernetes turns that target on too, and --only container
    // rewrites only its own files.
    manage()
        .current_dir(&s.project)
        .args([
            "deploy-config",
            "--domain",
            "example.com",
            "--database",
            "postgres",
        ])
        .args(["--only", "kubernetes"])
        .assert()
        .success();
    assert!(out.join("kubernetes/base/kustomization.yaml").is_file());
    assert!(!out.join("nginx").exists(), "vm files written by --only");
}

#[test]
fn check_and_force_cover_the_files_at_the_workspace_root() {
    let s = site("shop");
    let deploy = |extra: &[&str]| {
        let mut cmd = manage();
        cmd.current_dir(&s.project)
            .args([
                "deploy-config",
                "--domain",
                "example.com",
                "--target",
                "vm,container",
            ])
            .args(extra);
        cmd
    };
    // A Dockerfile of the project's own is never replaced silently.
    fs::write(s.project.join("Dockerfile"), "FROM scratch\n").unwrap();
    deploy(&[])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Dockerfile").and(predicate::str::contains("--force")));
    assert!(
        !s.project.join("deploy").exists(),
        "written despite a conflict"
    );
    assert_eq!(
        fs::read_to_string(s.project.join("Dockerfile")).unwrap(),
        "FROM scratch\n"
    );
    deploy(&["--force"]).assert().success();
    deploy(&["--check"]).assert().success();
    let dockerfile = s.project.join("Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    fs::write(&dockerfile, text + "RUN echo edited\n").unwrap();
    deploy(&["--check"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("Dockerfile (generated)"));
}

/// `.dockerignore` leaves the output directory out of the build context
/// wherever it is (it holds `container/app.env`, the app's secrets), and
/// says so when it cannot; a missing Cargo.lock, which the `--locked`
/// build needs, is warned of until it is there.
#[test]
fn the_output_directory_stays_out_of_the_build_and_a_missing_lockfile_is_warned_of() {
    let s = site("shop");
    let ignore = || fs::read_to_string(s.project.join(".dockerignore")).unwrap();
    let deploy = |out: &str| {
        let output = manage()
            .current_dir(&s.project)
            .args(["deploy-config", "--domain", "example.com"])
            .args(["--only", "container", "--force", "--out", out])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    let lock = "run `cargo generate-lockfile` and commit Cargo.lock";

    let said = deploy("ops/deploy");
    assert!(said.contains(lock), "{said}");
    assert!(ignore().lines().any(|l| l == "ops/deploy/"), "{}", ignore());

    fs::write(s.project.join("Cargo.lock"), "version = 4\n").unwrap();
    let outside = s.scratch.join("out").display().to_string();
    let said = deploy(&outside);
    assert!(!said.contains("Cargo.lock"), "{said}");
    assert!(!said.contains("cannot leave it out"), "{said}");
    assert!(!ignore().contains("deploy/"), "{}", ignore());

    // The project's own directory holds the sources: it cannot be left out.
    let said = deploy(".");
    assert!(
        said.contains("the output directory `.` holds files the image is built from"),
        "{said}"
    );
    assert!(
        ignore().lines().all(|l| l.starts_with('#')
            || [
                "target/",
                ".git/",
                "**/.env",
                "**/.env.*",
                "**/*.sqlite3",
                "**/*.sqlite3-*",
                "Dockerfile",
                ".dockerignore",
                "!static",
                ""
            ]
            .contains(&l)),
        "{}",
        ignore()
    );
}

#[test]
fn bad_target_and_container_settings_are_refused_with_their_names() {
    let s = site("shop");
    set_deploy_settings(
        &s.project,
        r#"targets = ["vm", "container", "docker"]"#,
        r#"[package.metadata.manage.deploy.container]
image = "registry.example.com/Team/shop:1.0"
builder-image = "rust"
runtime-image = "debian:latest"
nginx-image = "nginx@sha256:abc"
postgres-image = "postgres:15\nRUN evil"
uid = 0
port = 80
"#,
    );
    let assert = manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--domain", "example.com"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for needle in [
        "`targets[2]` = `docker`",
        "`container.image`",
        "`container.builder-image` = `rust`: is pinned",
        "`container.runtime-image` = `debian:latest`: is pinned",
        "`container.nginx-image` = `nginx@sha256:abc`",
        "`container.postgres-image`",
        "`container.uid` = `0`",
        "`container.port` = `80`",
        "nothing was written",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    assert!(!s.project.join("deploy").exists());
    assert!(!s.project.join("Dockerfile").exists());

    // An empty list, and a key the table does not have.
    let s = site("shop");
    set_deploy_settings(&s.project, "targets = []", "");
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .failure()
        .stderr(predicate::str::contains("`targets` = `[]`"));
    let s = site("shop");
    set_deploy_settings(
        &s.project,
        "",
        "[package.metadata.manage.deploy.container]\nimage-name = \"x\"",
    );
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .failure()
        .stderr(predicate::str::contains("container.image-name"));
}

/// A project with the container target's files, for `database`.
fn container_site(database: &str) -> crate::support::deploy::Site {
    let s = site("shop");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--domain", "example.com"])
        .args(["--target", "container", "--database", database])
        .assert()
        .success();
    s
}

/// docker-compose (v1, Debian's) reads both forms of the file: SQLite on a
/// shared volume, PostgreSQL with its password as a secret.
#[test]
fn compose_files_are_valid_for_docker_compose() {
    for database in ["sqlite", "postgres"] {
        let s = container_site(database);
        let dir = s.project.join("deploy/container");
        fs::copy(dir.join("app.env.example"), dir.join("app.env")).unwrap();
        fs::create_dir_all(dir.join("secrets")).unwrap();
        fs::write(dir.join("secrets/db-password"), "x\n").unwrap();
        let out = run_ok(
            Command::new("docker-compose")
                .current_dir(&dir)
                .args(["config"]),
        );
        let config = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            config.contains("service_completed_successfully"),
            "{config}"
        );
        assert_eq!(
            config.contains("POSTGRES_PASSWORD_FILE"),
            database == "postgres"
        );
        assert_eq!(
            config.contains("sqlite:///data/db.sqlite3"),
            database == "sqlite"
        );
        // The build context is the project, seen from deploy/container.
        let project = fs::canonicalize(&s.project).unwrap();
        assert!(
            config.contains(&format!("context: {}", project.display())),
            "{config}"
        );
    }
}

/// Every file of the container target's deploy/ part, for both databases
/// (the Dockerfile's snapshots are in `deploy_container`).
#[test]
fn container_files_snapshots() {
    for database in ["sqlite", "postgres"] {
        let s = container_site(database);
        let out = s.project.join("deploy/container");
        let read = |p: &str| {
            fs::read_to_string(out.join(p))
                .unwrap()
                .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
        };
        insta::assert_snapshot!(
            format!("container_compose_{database}"),
            read("compose.yaml")
        );
        insta::assert_snapshot!(
            format!("container_app_env_{database}"),
            read("app.env.example")
        );
        if database == "sqlite" {
            for file in [
                "nginx/nginx.conf",
                "nginx/shop/sites/http.conf",
                "nginx/shop/sites/https.conf",
                "nginx/shop/snippets/proxy.conf",
                "nginx/shop/snippets/security-headers.conf",
            ] {
                let name = file.replace(['/', '.'], "_");
                insta::assert_snapshot!(format!("container_{name}"), read(file));
            }
        }
    }
}
