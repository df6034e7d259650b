//! The image `manage deploy-config --only container` (#12) describes, built
//! and run with the real Docker, on loopback only (see `support::docker` for
//! the base images and the clean-up).

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;

use crate::support::deploy::{run, run_ok, venv_tool};
use crate::support::docker::{boxed_project, docker, docker_ok, Guard};
use crate::support::{cargo, eventually, free_port, generate, get, manage};

/// The harness itself: the builder's toolchain is this machine's, where the
/// official image has it, and the runtime image is Debian 12 without docs.
#[test]
fn base_images_are_made_locally_under_the_names_a_dockerfile_uses() {
    let dockerfile = "FROM rust:1.95-slim-bookworm AS builder\nFROM debian:bookworm-slim\n";
    let mut guard = Guard::new(dockerfile);
    let host = run(Command::new("cargo").arg("--version"));
    let script = "cargo --version && command -v cargo rustc cc pkg-config \
                  && echo $CARGO_HOME $RUSTUP_HOME";
    let id = guard.run(&[
        "--network",
        "none",
        "rust:1.95-slim-bookworm",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(docker_ok(&["wait", &id]), "0");
    let logs = docker_ok(&["logs", &id]);
    assert!(
        logs.starts_with(String::from_utf8_lossy(&host.stdout).trim()),
        "{logs}"
    );
    assert!(logs.contains("/usr/local/cargo/bin/cargo\n"), "{logs}");
    assert!(
        logs.contains("/usr/local/cargo /usr/local/rustup"),
        "{logs}"
    );
    let script = "grep VERSION_CODENAME /etc/os-release; ls /usr/share/doc | wc -l";
    let id = guard.run(&[
        "--network",
        "none",
        "debian:bookworm-slim",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(docker_ok(&["wait", &id]), "0");
    assert_eq!(docker_ok(&["logs", &id]), "VERSION_CODENAME=bookworm\n0");
}

#[test]
#[allow(clippy::print_stderr)] // the build times and the image size, for BENCHMARKS.md
fn the_image_builds_and_runs_read_only_as_its_user_healthy_and_stops_gracefully() {
    let (_tmp, dir) = boxed_project();
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--only", "container"])
        .assert()
        .success();
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    for line in [
        "COPY target/staticfiles /app/static",
        "    STATIC_MANIFEST=/app/static/staticfiles.json \\",
    ] {
        assert!(
            dockerfile.lines().any(|l| l == line),
            "no `{line}` in:\n{dockerfile}"
        );
    }
    let mut guard = Guard::new(&dockerfile);
    // Cold, unless deploy_compose's build of the same project is still
    // there (the rebuild below is what is asserted).
    let first = guard.build(&dir, &[]);
    let shared = step_cached(&first.log, "cargo build --release");

    // compose's nginx stage: the same static files where its nginx
    // configuration looks for them.
    let web = guard.build(&dir, &["--target", "web"]);
    let id = guard.run(&["--entrypoint", "ls", &web.image, "/srv/static"]);
    assert_eq!(docker_ok(&["wait", &id]), "0");
    let listing = docker_ok(&["logs", &id]);
    assert!(listing.starts_with("css\n"), "{listing}");
    assert!(listing.ends_with("\nstaticfiles.json"), "{listing}");

    // Read-only, the SQLite file in a volume of its own (anonymous: it
    // goes with the container), the port published on loopback only.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8000");
    let id = guard.run(&[
        "--read-only",
        "--volume",
        "/data",
        "--publish",
        &publish,
        "--health-interval",
        "1s",
        &first.image,
    ]);
    let addr = format!("127.0.0.1:{port}");
    let health = eventually(Duration::from_secs(30), || {
        get(&addr, "/healthz").ok().filter(|r| r.status == 200)
    });
    assert!(
        health.is_some(),
        "no 200 from /healthz: {}",
        docker_ok(&["logs", &id])
    );

    let status = fs::read_to_string(format!("/proc/{}/status", container_pid(&id))).unwrap();
    for field in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        assert_eq!(
            line.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["10001"; 4]
        );
    }
    let exec = |script: &str| run(docker().args(["exec", &id, "sh", "-c", script]));
    let write = exec("touch /app/x");
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only file system"),
        "{write:?}"
    );
    let listing = String::from_utf8_lossy(&exec("ls /data; ls /app/static").stdout).into_owned();
    assert!(listing.starts_with("db.sqlite3\ncss\n"), "{listing}");
    assert!(listing.contains("\nstaticfiles.json\n"), "{listing}");
    // The app links the hashed names through the manifest in the image,
    // and serves them from STATIC_ROOT (no nginx in front here).
    let home = get(&addr, "/").unwrap().text();
    let css = home
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|href| href.starts_with("/static/css/site."))
        .unwrap_or_else(|| panic!("no stylesheet link in:\n{home}"));
    assert_ne!(css, "/static/css/site.css", "{home}");
    let sheet = get(&addr, css).unwrap();
    assert_eq!(sheet.status, 200, "{css}");
    assert_eq!(
        sheet.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // Migrations are in the binary; the container's own command applies them.
    let migrate = run(docker().args(["exec", &id, "/usr/local/bin/boxed", "migrate"]));
    assert!(
        String::from_utf8_lossy(&migrate.stderr).contains("applied 20260101000000_create_notes"),
        "{migrate:?}"
    );
    assert_eq!(get(&addr, "/notes").unwrap().status, 200);

    let healthy = eventually(Duration::from_secs(30), || {
        let state = docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", &id]);
        (state == "healthy").then_some(())
    });
    assert!(
        healthy.is_some(),
        "not healthy: {}",
        docker_ok(&["inspect", "--format", "{{json .State.Health}}", &id])
    );

    let started = Instant::now();
    docker_ok(&["stop", "--time", "10", &id]);
    let stopped = started.elapsed();
    assert!(
        stopped < Duration::from_secs(5),
        "docker stop took {stopped:?}"
    );
    assert_eq!(
        docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &id]),
        "0"
    );
    let logs = run(docker().args(["logs", &id]));
    let logs = String::from_utf8_lossy(&logs.stderr).into_owned();
    assert!(
        logs.contains("shutting down: finishing in-flight requests"),
        "{logs}"
    );

    // A source change: the dependency layer comes from the cache, the
    // change is in the new binary.
    let routes = dir.join("src/routes.rs");
    let source = fs::read_to_string(&routes).unwrap();
    fs::write(&routes, source.replace("\"ok\\n\"", "\"fine here\\n\"")).unwrap();
    let warm = guard.build(&dir, &[]);
    assert!(
        step_cached(&warm.log, "cargo build --release"),
        "{}",
        warm.log
    );
    assert!(!step_cached(&warm.log, "RUN touch"), "{}", warm.log);
    let addr = run_on_host_network(&mut guard, &warm.image);
    let health = get(&addr, "/healthz").unwrap();
    assert_eq!(
        (health.status, health.text()),
        (200, "fine here\n".to_owned())
    );
    // The release binary carries its templates: the image has no
    // templates/ directory, and the 404 page still renders.
    let missing = get(&addr, "/nope").unwrap();
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("<h1>Not found</h1>"),
        "{}",
        missing.text()
    );

    // An edit of the Dockerfile alone (.dockerignore leaves it out of the
    // context) rebuilds no layer of the app: the sources' copy and the
    // app's build come from the cache.
    let mut edited = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    edited.push_str("# edited by hand\n");
    fs::write(dir.join("Dockerfile"), edited).unwrap();
    let again = guard.build(&dir, &[]);
    for step in ["COPY . .", "RUN touch"] {
        assert!(step_cached(&again.log, step), "`{step}`:\n{}", again.log);
    }

    let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &warm.image])
        .parse()
        .unwrap();
    eprintln!(
        "container image: {} build {:.1?}, rebuild after a source change {:.1?}, image {:.1} MB",
        if shared {
            "first (cached by another test)"
        } else {
            "cold"
        },
        first.took,
        warm.took,
        size as f64 / 1e6
    );
}

/// A workspace member: the workspace root is the build context, every
/// member's manifest goes into the dependency layer, and a library member
/// the app uses is rebuilt from its real source.
#[test]
fn a_workspace_member_builds_with_the_workspace_as_its_context() {
    let (tmp, dir) = generate("member");
    let root = tmp.path();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"member\", \"greeting\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("greeting/src")).unwrap();
    fs::write(
        root.join("greeting/Cargo.toml"),
        "[package]\nname = \"greeting\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        root.join("greeting/src/lib.rs"),
        "pub const HEALTHY: &str = \"healthy, says greeting\\n\";\n",
    )
    .unwrap();
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let manifest = manifest.replace(
        "[dependencies]\n",
        "[dependencies]\ngreeting = { path = \"../greeting\" }\n",
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let routes = fs::read_to_string(dir.join("src/routes.rs")).unwrap();
    let routes = routes.replace("\"ok\\n\"", "greeting::HEALTHY");
    fs::write(dir.join("src/routes.rs"), routes).unwrap();
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--only", "container"])
        .assert()
        .success();
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    for line in [
        "COPY member/Cargo.toml member/Cargo.toml",
        "COPY greeting/Cargo.toml greeting/Cargo.toml",
        " && : > greeting/src/lib.rs \\",
        "COPY member/static /app/static",
    ] {
        assert!(
            dockerfile.lines().any(|l| l == line),
            "no `{line}` in:\n{dockerfile}"
        );
    }
    let ignore = fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "member/deploy/"), "{ignore}");
    run_ok(
        Command::new(venv_tool("hadolint"))
            .args(["--failure-threshold", "style", "--no-color"])
            .arg(dir.join("Dockerfile")),
    );

    let lock = run(cargo(root).args(["generate-lockfile", "--quiet"]));
    assert!(lock.status.success(), "{lock:?}");
    let mut guard = Guard::new(&dockerfile);
    let dockerfile = dir.join("Dockerfile").display().to_string();
    let build = guard.build(root, &["--file", &dockerfile]);
    let addr = run_on_host_network(&mut guard, &build.image);
    let health = get(&addr, "/healthz").unwrap();
    assert_eq!(
        (health.status, health.text()),
        (200, "healthy, says greeting\n".to_owned())
    );
}

/// The process of a running container, as this machine sees it.
fn container_pid(id: &str) -> i32 {
    docker_ok(&["inspect", "--format", "{{.State.Pid}}", id])
        .parse()
        .unwrap()
}

/// Runs `image` read-only on the host's network (a free loopback port,
/// SQLite in a tmpfs the app's user owns) until it answers; its address.
fn run_on_host_network(guard: &mut Guard, image: &str) -> String {
    let port = free_port();
    let env = format!("PORT={port}");
    let id = guard.run(&[
        "--read-only",
        "--tmpfs",
        "/data:uid=10001,gid=10001",
        "--network",
        "host",
        "--env",
        &env,
        image,
    ]);
    let addr = format!("127.0.0.1:{port}");
    let answered = eventually(Duration::from_secs(30), || get(&addr, "/healthz").ok());
    assert!(
        answered.is_some(),
        "no answer: {}",
        docker_ok(&["logs", &id])
    );
    addr
}

/// The step of a classic-builder log that runs `needle`: whether its
/// layer came from the cache.
fn step_cached(log: &str, needle: &str) -> bool {
    let mut lines = log
        .lines()
        .skip_while(|l| !(l.starts_with("Step ") && l.contains(needle)));
    assert!(
        lines.next().is_some(),
        "no step running `{needle}` in:\n{log}"
    );
    lines.next() == Some(" ---> Using cache")
}
