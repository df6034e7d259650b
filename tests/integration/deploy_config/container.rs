//! `manage deploy-config --only container` (#12): the Dockerfile and
//! .dockerignore it writes, checked by hadolint and checkov. Built and run
//! with the real Docker: `tests/live/deploy_config/container.rs`.

use std::fs;
use std::process::Command;

use assert_cmd::prelude::*;

use crate::support::deploy::{checkov, run, run_ok, venv_tool};
use crate::support::docker::from_images;
use crate::support::{generate, manage};

/// A fresh project with its container files; the Dockerfile's text.
fn container_project(name: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let (tmp, dir) = generate(name);
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--only", "container"])
        .assert()
        .success();
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    (tmp, dir, dockerfile)
}

#[test]
fn dockerfile_and_dockerignore_pass_hadolint_and_checkov() {
    let (_tmp, dir, dockerfile) = container_project("mysite");
    let version = |text: String| text.replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
    insta::assert_snapshot!("container_dockerfile", version(dockerfile.clone()));
    let ignore = fs::read_to_string(dir.join(".dockerignore")).unwrap();
    insta::assert_snapshot!("container_dockerignore", version(ignore));
    // No finding at any level: info and style count too.
    let hadolint = || {
        run_ok(
            Command::new(venv_tool("hadolint"))
                .args(["--failure-threshold", "style", "--no-color"])
                .arg(dir.join("Dockerfile")),
        )
    };
    hadolint();
    // checkov's Dockerfile checks (about 50): none fails, none is skipped.
    let scan = || checkov("dockerfile", &dir.join("Dockerfile"), 40);
    assert_eq!(scan(), Ok(0));
    // Every stage compose builds is one the Dockerfile has.
    let compose = fs::read_to_string(dir.join("deploy/container/compose.yaml")).unwrap();
    let targets: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("target: "))
        .collect();
    assert_eq!(targets, ["app", "web"], "{compose}");
    for target in targets {
        let stage = format!(" AS {target}\n");
        assert!(
            dockerfile.contains(&stage),
            "no stage `{target}`:\n{dockerfile}"
        );
    }
    // With PostgreSQL, DATABASE_URL comes from where the container runs.
    manage()
        .current_dir(&dir)
        .args([
            "deploy-config",
            "--only",
            "container",
            "--database",
            "postgres",
            "--force",
        ])
        .assert()
        .success();
    let postgres = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert!(!postgres.contains("DATABASE_URL="), "{postgres}");
    hadolint();
    assert_eq!(scan(), Ok(0));
    // The gates fail on a Dockerfile with findings (no USER, no
    // HEALTHCHECK, `latest`).
    let bad = dir.join("Bad.Dockerfile");
    fs::write(&bad, "FROM debian:latest\nRUN apt-get install curl\n").unwrap();
    let out = run(Command::new(venv_tool("hadolint")).arg(&bad));
    assert!(!out.status.success(), "{out:?}");
    let found = checkov("dockerfile", &bad, 0).unwrap_err();
    assert!(found.contains("CKV_DOCKER_3"), "{found}");
}

#[test]
fn from_lines_name_the_base_images_not_the_stages() {
    let dockerfile = "FROM rust:1.95-slim-bookworm AS builder\nRUN true\n\
        from --platform=linux/amd64 debian:bookworm-slim as runtime\n\
        FROM builder AS test\nFROM runtime\n";
    assert_eq!(
        from_images(dockerfile),
        ["rust:1.95-slim-bookworm", "debian:bookworm-slim"]
    );
}
