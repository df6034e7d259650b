//! The project `manage startproject` generates, built and run for real:
//! its own checks, graceful stops, sockets from systemd, the lame duck,
//! migrations.

use std::fs;
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::{self, build_project, cargo, get, manage, Running};

#[test]
fn generated_project_builds_serves_and_stops_gracefully() {
    let (_tmp, dir) = support::generate("hello-site");

    // Its own checks: formatted as rustfmt would, no warnings under clippy
    // -D warnings, its own tests.
    let fmt = cargo(&dir).args(["fmt", "--check"]).output().unwrap();
    assert!(
        fmt.status.success(),
        "the generated project is not rustfmt-clean:\n{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    let clippy = cargo(&dir)
        .args(["clippy", "--all-targets", "--quiet", "--", "-D", "warnings"])
        .output()
        .unwrap();
    assert!(
        clippy.status.success(),
        "{}",
        String::from_utf8_lossy(&clippy.stderr)
    );
    let test = cargo(&dir).args(["test", "--quiet"]).output().unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );

    let exe = build_project(&dir, "hello-site");
    let mut cmd = std::process::Command::new(&exe);
    // Its SQLite file goes into the project, not into manage's checkout.
    cmd.current_dir(&dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env_remove("LISTEN_FDS");
    let mut server = Running::start(cmd);
    let line = server.wait_for_line("listening on http://", Duration::from_secs(10));
    let addr = line.split("http://").nth(1).unwrap().trim().to_owned();

    let health = get(&addr, "/healthz").unwrap();
    assert_eq!(health.status, 200);
    let home = get(&addr, "/").unwrap();
    assert_eq!(home.status, 200);
    assert!(home
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(home.text().contains("hello-site is running"));
    // No manifest (development): the plain name.
    assert!(home.text().contains(r#"href="/static/css/site.css""#));
    assert_eq!(get(&addr, "/nope").unwrap().status, 404);
    // One access line per request, with its status and time.
    server.wait_for_line("\"GET /nope HTTP/1.1\" 404 ", Duration::from_secs(5));

    // `NAME healthcheck` (the container's HEALTHCHECK) asks the same
    // server, found through PORT.
    let port = addr.rsplit(':').next().unwrap();
    let healthcheck = |port: &str| {
        std::process::Command::new(&exe)
            .arg("healthcheck")
            .env("HOST", "0.0.0.0")
            .env("PORT", port)
            .output()
            .unwrap()
    };
    let out = healthcheck(port);
    assert!(out.status.success(), "{out:?}");

    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    let out = healthcheck(port);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("unhealthy: cannot connect to 127.0.0.1:"),
        "{out:?}"
    );

    // With collectstatic's manifest (production, #13): hashed names, under
    // STATIC_URL; a name the manifest lacks stays plain.
    let manifest = dir.join("staticfiles.json");
    fs::write(
        &manifest,
        r#"{"paths": {"css/site.css": "css/site.0123456789ab.css"}, "version": "1.1", "hash": "x"}"#,
    )
    .unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(&dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("STATIC_MANIFEST", &manifest)
        .env("STATIC_URL", "/assets/")
        .env_remove("LISTEN_FDS");
    let server = Running::start(cmd);
    let line = server.wait_for_line("listening on http://", Duration::from_secs(10));
    let addr = line.split("http://").nth(1).unwrap().trim().to_owned();
    let home = get(&addr, "/").unwrap().text();
    assert!(
        home.contains(r#"href="/assets/css/site.0123456789ab.css""#)
            && home.contains(r#"href="/assets/favicon.svg""#),
        "{home}"
    );
}

#[test]
fn generated_project_accepts_a_socket_from_systemd() {
    use std::os::fd::AsRawFd;

    let (_tmp, dir) = support::generate("socket-site");
    let exe = build_project(&dir, "socket-site");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fd = listener.as_raw_fd();

    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(&dir)
        .env("LISTEN_FDS", "1")
        // PORT is ignored under LISTEN_FDS.
        .env("PORT", "1");
    socket_as_fd3(&mut cmd, fd);
    let server = Running::start(cmd);
    server.wait_for_line(
        &format!("listening on http://{addr}"),
        Duration::from_secs(10),
    );
    drop(listener);
    assert_eq!(get(&addr, "/healthz").unwrap().status, 200);
}

#[test]
fn under_systemd_without_a_socket_the_generated_app_refuses_to_start() {
    let (_tmp, dir) = support::generate("nosock-site");
    let exe = build_project(&dir, "nosock-site");
    // As systemd starts a service whose socket unit is not running: no
    // LISTEN_FDS, no PORT. The app must not fall back to 127.0.0.1:8000.
    let out = std::process::Command::new(&exe)
        .current_dir(&dir)
        .env_remove("PORT")
        .env_remove("LISTEN_FDS")
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("started by systemd without a socket (no LISTEN_FDS) and without PORT"),
        "{stderr}"
    );
    // A unit that sets PORT itself is a choice, and is honoured.
    let port = support::free_port();
    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(&dir)
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .env("PORT", port.to_string());
    let server = Running::start(cmd);
    server.wait_for_line(
        &format!("listening on http://127.0.0.1:{port}"),
        Duration::from_secs(10),
    );
    assert_eq!(
        get(&format!("127.0.0.1:{port}"), "/healthz")
            .unwrap()
            .status,
        200
    );
}

/// Under systemd (#10), SIGTERM must not close a kept-alive connection a
/// proxy may be sending on: the app answers on it with `Connection: close`,
/// then exits once its connections are gone.
#[test]
fn under_systemd_sigterm_still_answers_open_connections() {
    use std::os::fd::AsRawFd;

    let (_tmp, dir) = support::generate("lame-duck");
    let exe = build_project(&dir, "lame-duck");
    // Held by the test for the whole run, as systemd holds the socket.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fd = listener.as_raw_fd();
    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(&dir)
        .env("LISTEN_FDS", "1")
        .env("INVOCATION_ID", "0123456789abcdef")
        .env_remove("LAME_DUCK_SECS");
    socket_as_fd3(&mut cmd, fd);
    let mut server = Running::start(cmd);
    server.wait_for_line("listening on http://", Duration::from_secs(10));
    assert!(lame_duck_after_sigterm(&mut server, &addr));
    drop(listener);
}

/// In a container (HOST/PORT, and LAME_DUCK_SECS, which the image
/// deploy-config writes sets) nginx keeps idle connections to the app just
/// the same; without LAME_DUCK_SECS (`manage runserver`, by hand) SIGTERM
/// closes them at once.
#[test]
fn in_a_container_lame_duck_secs_keeps_answering_open_connections() {
    let (_tmp, dir) = support::generate("lame-duck");
    let exe = build_project(&dir, "lame-duck");
    for (lame_duck, answered) in [(Some("5"), true), (None, false), (Some("soon"), false)] {
        let mut cmd = std::process::Command::new(&exe);
        cmd.current_dir(&dir)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env_remove("LISTEN_FDS")
            .env_remove("INVOCATION_ID")
            .env_remove("LAME_DUCK_SECS");
        if let Some(secs) = lame_duck {
            cmd.env("LAME_DUCK_SECS", secs);
        }
        let mut server = Running::start(cmd);
        if lame_duck == Some("soon") {
            server.wait_for_line("LAME_DUCK_SECS is whole seconds", Duration::from_secs(10));
        }
        let line = server.wait_for_line("listening on http://", Duration::from_secs(10));
        let addr = line.split("http://").nth(1).unwrap().trim().to_owned();
        assert_eq!(
            lame_duck_after_sigterm(&mut server, &addr),
            answered,
            "LAME_DUCK_SECS={lame_duck:?}"
        );
    }
}

/// The app's embedded migrations (build.rs, no sqlx macro) and `manage
/// migrate` agree on names and checksums, and a new migration file is in
/// the next build.
#[test]
fn the_apps_embedded_migrations_agree_with_manage_migrate() {
    let (_tmp, dir) = support::generate("mig-site");
    let exe = build_project(&dir, "mig-site");
    let app_migrate = |exe: &std::path::Path| {
        let out = std::process::Command::new(exe)
            .arg("migrate")
            .current_dir(&dir)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    manage()
        .current_dir(&dir)
        .arg("migrate")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Applied 20260101000000_create_notes",
        ));
    let log = app_migrate(&exe);
    assert!(log.contains("no migrations to apply"), "{log}");

    manage()
        .current_dir(&dir)
        .args(["makemigrations", "add_tags"])
        .assert()
        .success();
    let up = fs::read_dir(dir.join("migrations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_add_tags.up.sql"))
        .expect("the new migration");
    fs::write(&up, "ALTER TABLE notes ADD COLUMN tags TEXT;\n").unwrap();
    let exe = build_project(&dir, "mig-site");
    let log = app_migrate(&exe);
    assert!(log.contains("_add_tags"), "{log}");
    let shown = manage()
        .current_dir(&dir)
        .arg("showmigrations")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("[X] 20260101000000_create_notes") && shown.contains("_add_tags"),
        "{shown}"
    );
    assert!(!shown.contains("[ ]") && !shown.contains("[!]"), "{shown}");
}

/// Hands the listening socket `fd` to the child as fd 3, as systemd does.
fn socket_as_fd3(cmd: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: only dup2/fcntl run in the child, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 clears close-on-exec on the copy; when the socket already
            // is fd 3, clear it by hand.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(fd, 3) >= 0
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Reads one response of a kept-alive connection: its head, and the body
/// by Content-Length.
fn read_response(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed mid-head: {buf:?}"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head
}

/// Opens a kept-alive connection to `server` at `addr`, sends SIGTERM, and
/// sends a second request on that connection: whether the server said it
/// went lame duck (and then answered that request with `Connection:
/// close`, the connection then closed); the server must
/// exit cleanly and soon either way.
fn lame_duck_after_sigterm(server: &mut Running, addr: &str) -> bool {
    use std::io::{Read, Write};

    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(request).unwrap();
    let head = read_response(&mut conn);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    server.signal(libc::SIGTERM);
    let lame_duck = server
        .wait_for_line("shutting down:", Duration::from_secs(3))
        .contains("Connection: close");
    // A closed connection may still take the write; its read says so.
    let _ = conn.write_all(request);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answered = !answer.is_empty();
    if answered {
        let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
    }
    // Lame duck promises an answer. Without it the idle connection is
    // closed, but a request that reaches the server before the close is
    // still answered (with `Connection: close`): either outcome is right.
    assert!(
        answered || !lame_duck,
        "said lame duck, yet the open connection got no answer"
    );
    // With its last connection gone it exits at once, well before its
    // lame-duck limit (5 s), and cleanly.
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("exits once its connections are closed");
    assert!(status.success(), "{status}");
    lame_duck
}
