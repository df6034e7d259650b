//! `manage startproject`: names, destinations, templates, and the generated
//! project built and run for real.

use std::fs;
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::{self, build_project, cargo, get, manage, tree, Running};

#[test]
fn refused_names_say_why_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("fn", "`fn` is a Rust keyword and cannot be a project name"),
        ("self", "is a Rust keyword"),
        ("std", "standard library crate"),
        ("proc_macro", "standard library crate"),
        ("test", "standard library crate"),
        ("1site", "must start with an ASCII letter"),
        ("_site", "must start with an ASCII letter"),
        ("my site", "` ` is not allowed"),
        ("my.site", "`.` is not allowed"),
        ("café", "`é` is not allowed"),
        ("../evil", "must start with an ASCII letter"),
        ("build", "conflicts with cargo's build directory"),
    ] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("error: ").and(predicate::str::contains(why)))
            .stderr(predicate::str::contains("help:"));
    }
    let long = "a".repeat(65);
    manage()
        .current_dir(tmp.path())
        .args(["startproject", &long])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at most 64"));
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));
}

#[test]
fn a_non_empty_destination_is_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("mysite");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("notes.txt"), "mine").unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "mysite"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "destination `mysite` already exists and is not empty",
        ));
    assert_eq!(tree(tmp.path()), ["mysite/", "mysite/notes.txt"]);
    assert_eq!(fs::read_to_string(dest.join("notes.txt")).unwrap(), "mine");

    fs::write(tmp.path().join("afile"), "x").unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "blog", "afile"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a directory"));
    assert_eq!(fs::read_to_string(tmp.path().join("afile")).unwrap(), "x");
}

#[test]
fn an_empty_destination_directory_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("here");
    fs::create_dir(&dest).unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "blog", "here"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("cd here").and(predicate::str::contains("manage runserver")),
        );
    assert!(dest.join("Cargo.toml").is_file());
}

fn user_template(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn templates_that_escape_the_destination_are_refused() {
    for (file, what) in [
        ("{{ '..' }}/evil.txt.jinja", "contains `..`"),
        ("sub/{{ '..\\u002f..\\u002fevil' }}.jinja", "contains `..`"),
        ("{{ '\\u002ftmp\\u002fevil' }}.jinja", "absolute path"),
    ] {
        let template = user_template(&[("ok.txt", "fine"), (file, "bad")]);
        let tmp = tempfile::tempdir().unwrap();
        manage()
            .current_dir(tmp.path())
            .args(["startproject", "site", "--template"])
            .arg(template.path())
            .assert()
            .code(1)
            .stderr(predicate::str::contains(what));
        assert!(
            tree(tmp.path()).is_empty(),
            "{file}: {:?}",
            tree(tmp.path())
        );
        assert!(!tmp.path().parent().unwrap().join("evil.txt").exists());
    }

    // A symlink that leads out of the template directory.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "do not copy").unwrap();
    let template = user_template(&[("ok.txt", "fine")]);
    std::os::unix::fs::symlink(outside.path().join("secret"), template.path().join("link"))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("outside the template directory"));
    assert!(tree(tmp.path()).is_empty());
}

/// `manage` with its data segment capped: reading a 1 GB file whole
/// would fail the allocation and abort instead of giving a clear error.
fn manage_within(limit: u64) -> assert_cmd::Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = manage();
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_cmd::Command::from_std(cmd)
}

#[test]
fn templates_with_fifos_or_huge_files_are_refused_in_bounded_time_and_memory() {
    // A FIFO with no writer: reading it would block forever.
    let template = user_template(&[("ok.txt", "fine")]);
    support::mkfifo(&template.path().join("pipe"));
    let dest = tempfile::tempdir().unwrap();
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(
                "template file `pipe` is a FIFO (named pipe), not a regular file",
            )
            .and(predicate::str::contains("regular files only")),
        );
    assert!(tree(dest.path()).is_empty(), "{:?}", tree(dest.path()));

    // A 1 GB file (sparse: it costs no disk) under a 256 MiB data limit.
    let template = user_template(&[("ok.txt", "fine")]);
    let huge = fs::File::create(template.path().join("huge.bin")).unwrap();
    huge.set_len(1 << 30).unwrap();
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "template file `huge.bin` is larger than 16 MiB",
        ));
    // Files that fit one by one but not together.
    let template = user_template(&[]);
    for i in 0..5 {
        let f = fs::File::create(template.path().join(format!("part{i}.bin"))).unwrap();
        f.set_len(15 << 20).unwrap();
    }
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("under 64 MiB"));
    assert!(tree(dest.path()).is_empty(), "{:?}", tree(dest.path()));
}

#[test]
fn every_accepted_name_gives_a_project_deploy_config_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let long = format!("a{}", "-B".repeat(31) + "c");
    assert_eq!(long.len(), 64);
    for name in ["A", "Main", "Nul-x", "my-Blog", long.as_str()] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .success();
        let out = tmp.path().join(format!("{name}-deploy"));
        manage()
            .current_dir(tmp.path().join(name))
            .args(["deploy-config", "--out"])
            .arg(&out)
            .assert()
            .success();
        let unit = fs::read_to_string(out.join(format!("systemd/{name}@.service"))).unwrap();
        let user = name.to_ascii_lowercase().replace('-', "_");
        let user = &user[..user.len().min(31)];
        assert!(unit.contains(&format!("User={user}\n")), "{name}: {unit}");
    }
    // Names whose derived account is the system's are refused up front.
    for name in ["root", "Nobody", "postgres", "www-data"] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "would make the app run as the system account",
            ));
    }
}

#[test]
fn a_failure_half_way_removes_only_what_this_run_created() {
    // The last file's name is too long for the file system: the first files
    // are written, then writing fails for real.
    let template = user_template(&[
        ("a.txt", "a"),
        ("dir/b.txt", "b"),
        ("zz{{ project_name * 100 }}.jinja", "c"),
    ]);

    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("removed what was created"));
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));

    // An empty directory that was there before stays there.
    fs::create_dir(tmp.path().join("keep")).unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "keep", "--template"])
        .arg(template.path())
        .assert()
        .code(1);
    assert_eq!(tree(tmp.path()), ["keep/"]);
}

#[test]
fn a_user_template_is_rendered_with_the_same_context() {
    let template = user_template(&[
        (
            "README.md.jinja",
            "{{ project_name }} {{ crate_name }} {{ manage_version }} {{ secret_key | length }}\n",
        ),
        (
            "conf/{{ crate_name }}.conf.jinja",
            "name={{ project_name }}\n",
        ),
        ("raw.txt", "{{ not rendered }}"),
        (".github/workflows/ci.yml", "on: push\n"),
    ]);
    let script = template.path().join("run.sh");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "my-blog", "--template"])
        .arg(template.path())
        .assert()
        .success();
    let out = tmp.path().join("my-blog");
    assert_eq!(
        tree(&out),
        [
            ".github/",
            ".github/workflows/",
            ".github/workflows/ci.yml",
            "README.md",
            "conf/",
            "conf/my_blog.conf",
            "raw.txt",
            "run.sh"
        ]
    );
    assert_eq!(
        fs::read_to_string(out.join("README.md")).unwrap(),
        format!("my-blog my_blog {} 59\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        fs::read_to_string(out.join("conf/my_blog.conf")).unwrap(),
        "name=my-blog\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("raw.txt")).unwrap(),
        "{{ not rendered }}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(out.join("run.sh")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "executable bit kept");
}

#[test]
fn a_template_error_names_the_file_and_writes_nothing() {
    let template = user_template(&[("a.txt.jinja", "{{ no_such_variable }}"), ("b.txt", "b")]);
    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a.txt.jinja").and(predicate::str::contains("undefined")));
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn generated_tree_snapshot() {
    let (_tmp, dir) = support::generate("mysite");
    insta::assert_snapshot!("startproject_tree", tree(&dir).join("\n"));
    insta::assert_snapshot!(
        "startproject_cargo_toml",
        fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    );
    let env = fs::read_to_string(dir.join(".env")).unwrap();
    assert!(env.contains("SECRET_KEY=insecure-"), "{env}");
    // The app's templates are copied as they are, for the app's own
    // minijinja to render: not rendered by manage.
    let welcome = fs::read_to_string(dir.join("templates/welcome.html")).unwrap();
    assert!(
        welcome.contains("{% block title %}{{ project }} is running{% endblock %}"),
        "{welcome}"
    );
    let base = fs::read_to_string(dir.join("templates/base.html")).unwrap();
    assert!(
        base.contains(r#"href="{{ static("css/site.css") }}""#),
        "{base}"
    );
}

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
    cmd.env("HOST", "127.0.0.1")
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
    cmd.env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
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
    assert!(idle_connection_answered_after_sigterm(&mut server, &addr));
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
            idle_connection_answered_after_sigterm(&mut server, &addr),
            answered,
            "LAME_DUCK_SECS={lame_duck:?}"
        );
    }
}

/// Opens a kept-alive connection to `server` at `addr`, sends SIGTERM, and
/// sends a second request on that connection: whether it was answered
/// (with `Connection: close`, the connection then closed); the server must
/// exit cleanly and soon either way.
fn idle_connection_answered_after_sigterm(server: &mut Running, addr: &str) -> bool {
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
    assert_eq!(
        answered, lame_duck,
        "answered without saying lame duck, or the reverse"
    );
    // With its last connection gone it exits at once, well before its
    // lame-duck limit (5 s), and cleanly.
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("exits once its connections are closed");
    assert!(status.success(), "{status}");
    answered
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
