//! `manage deploy-config --only container` (#12): the generated Dockerfile
//! built with the real Docker and run, on loopback only.

use std::process::Command;

use crate::support::deploy::run;
use crate::support::docker::{docker, docker_ok, from_images, Guard};

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

/// The harness itself: the builder's toolchain is this machine's, where the
/// official image has it, and the runtime image is Debian 12 without docs.
#[test]
fn base_images_are_made_locally_under_the_names_a_dockerfile_uses() {
    let dockerfile = "FROM rust:1.95-slim-bookworm AS builder\nFROM debian:bookworm-slim\n";
    let mut guard = Guard::new(dockerfile);
    let host = run(Command::new("cargo").arg("--version"));
    let id = guard.run(&["--network", "none", "rust:1.95-slim-bookworm", "sh", "-c",
        "cargo --version && command -v cargo rustc cc pkg-config && echo $CARGO_HOME $RUSTUP_HOME"]);
    assert_eq!(docker_ok(&["wait", &id]), "0");
    let logs = run(docker().args(["logs", &id]));
    let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert!(logs.starts_with(String::from_utf8_lossy(&host.stdout).trim()), "{logs}");
    assert!(logs.contains("/usr/local/cargo/bin/cargo\n"), "{logs}");
    assert!(logs.contains("/usr/local/cargo /usr/local/rustup"), "{logs}");
    let id = guard.run(&["--network", "none", "debian:bookworm-slim", "sh", "-c",
        "grep VERSION_CODENAME /etc/os-release; ls /usr/share/doc | wc -l"]);
    assert_eq!(docker_ok(&["wait", &id]), "0");
    let logs = run(docker().args(["logs", &id]));
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "VERSION_CODENAME=bookworm\n0\n");
}
