//! Releases an operator can trust (#15), on the booted Debian 12: POSTs
//! through restarts, a release that cannot start refused and undone by
//! install.sh while the previous one serves, `install.sh rollback`, a port
//! change moved under load, and a crash loop that ends in an alert.

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::container::{debian_tree, Container};
use super::{
    finish_load, instance_health, nginx_errors, plain_site_args, release_build, start_wrk,
    through_nginx, Load, NAME, NEW_CONNECTIONS,
};
use crate::support::deploy::site;
use crate::support::eventually;

const SITE: &str = "http://localhost:80";

/// wrk POSTing to `/` for `seconds`, counting what nginx answered: any
/// status the app chose (the scaffold's `/` answers POST with 405) is an
/// answer, 5xx from nginx (502: the app dropped the request) a failure.
const POST_LUA: &str = r#"
wrk.method = "POST"
wrk.body = "note=hello"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0; answered = 0 end
function response(status, headers, body)
  if status >= 500 then failed = failed + 1 else answered = answered + 1 end
end
function done(summary, latency, requests)
  local f, a = 0, 0
  for _, t in ipairs(threads) do f = f + t:get("failed"); a = a + t:get("answered") end
  io.write(string.format("POST answered: %d failed: %d\n", a, f))
end
"#;

/// A request counts as failed when it gets an error, not when it waits: a
/// request sent to an instance that is being replaced waits in its socket
/// for the next process (wrk's own default gives up after 2 s). The
/// longest wait is printed with each run.
const WRK_TIMEOUT: &[&str] = &["--timeout", "10s"];

fn start_gets(c: &Container, seconds: u32, extra: &[&str]) -> Child {
    start_wrk(c, SITE, seconds, &[WRK_TIMEOUT, extra].concat())
}

fn start_posts(c: &Container, seconds: u32, extra: &[&str]) -> Child {
    fs::write(c.rootfs().join("root/post.lua"), POST_LUA).unwrap();
    c.command("wrk")
        .args([
            "-t2",
            "-c4",
            &format!("-d{seconds}s"),
            "-s",
            "/root/post.lua",
        ])
        .args(WRK_TIMEOUT)
        .args(extra)
        .arg(format!("{SITE}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk in the container")
}

/// (answered, failed) POSTs, and wrk's socket errors.
fn finish_posts(wrk: Child) -> (u64, u64, Load) {
    let load = finish_load(wrk);
    let line = load
        .text
        .lines()
        .find_map(|l| l.strip_prefix("POST answered: "))
        .unwrap_or_else(|| panic!("no POST summary:\n{}", load.text))
        .to_owned();
    let (answered, failed) = line.split_once(" failed: ").unwrap();
    (
        answered.parse().unwrap(),
        failed.trim().parse().unwrap(),
        load,
    )
}

/// Asserts that GET and POST load both went through without a failure.
#[allow(clippy::print_stderr)] // the figures, for whoever watches
fn assert_clean(c: &Container, what: &str, get: Child, post: Child) {
    let (answered, failed, posts) = finish_posts(post);
    let gets = finish_load(get);
    let errors = nginx_errors(c);
    eprintln!(
        "{what}: {} GETs ({} non-2xx, longest {}), {answered} POSTs answered, {failed} failed (longest {}); socket errors: {} / {}\nnginx:\n{errors}",
        gets.requests,
        gets.non_2xx,
        gets.latency_max,
        posts.latency_max,
        if gets.socket_errors.is_empty() { "none" } else { &gets.socket_errors },
        if posts.socket_errors.is_empty() { "none" } else { &posts.socket_errors },
    );
    assert!(answered > 0, "{what}: no POST answered");
    assert_eq!(failed, 0, "{what}: POSTs failed\nnginx:\n{errors}");
    assert_eq!(gets.non_2xx, 0, "{what}: {}\nnginx:\n{errors}", gets.text);
    assert!(gets.socket_errors.is_empty(), "{what}: {}", gets.text);
    assert!(posts.socket_errors.is_empty(), "{what}: {}", posts.text);
}

/// The release (directory name) the running instance on `port` executes.
fn running_release(c: &Container, port: u16) -> String {
    let exe = c.sh_ok(&format!(
        "readlink /proc/$(systemctl show -P MainPID {NAME}@{port}.service)/exe"
    ));
    exe.trim()
        .rsplit('/')
        .nth(1)
        .unwrap_or_else(|| panic!("{exe}"))
        .to_owned()
}

fn current_release(c: &Container) -> String {
    c.sh_ok(&format!("basename $(readlink /opt/{NAME}/current)"))
        .trim()
        .to_owned()
}

fn deploy_args(base_port: u16) -> Vec<String> {
    plain_site_args(&["--force", "--base-port", &base_port.to_string()])
}

fn with_marker(exe: &Path, marker: &str, to: &Path) {
    let mut binary = fs::read(exe).unwrap();
    binary.extend_from_slice(marker.as_bytes());
    fs::write(to, binary).unwrap();
}

#[test]
fn releases_are_health_gated_rolled_back_and_moved_without_losing_a_request() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);

    let c = Container::boot(&tree, "rel");
    let deploy = c.rootfs().join("root/deploy");
    s.deploy(&deploy, &deploy_args(8001));
    fs::copy(&exe, deploy.join(NAME)).unwrap();
    c.sh_ok("cd /root/deploy && ./install.sh");
    let first = current_release(&c);
    assert_eq!(through_nginx(&c, SITE, "/healthz"), "200");
    nginx_errors(&c);

    // 1. POSTs and GETs through one-at-a-time restarts: none lost.
    let get = start_gets(&c, 9, &[]);
    let post = start_posts(&c, 9, &[]);
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..2 {
        for port in [8001, 8002] {
            c.sh_ok(&format!("systemctl restart {NAME}@{port}.service"));
            eventually(Duration::from_secs(10), || {
                instance_health(&c, port).then_some(())
            })
            .unwrap_or_else(|| panic!("{NAME}@{port} did not come back"));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert_clean(&c, "four restarts", get, post);

    // 2. A good new release through install.sh, under load.
    with_marker(&exe, "\0release two", &deploy.join(NAME));
    let get = start_gets(&c, 6, &[]);
    let post = start_posts(&c, 6, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let out = c.sh_ok("cd /root/deploy && ./install.sh");
    let second = current_release(&c);
    assert_ne!(second, first, "{out}");
    assert!(out.contains(&format!("release {second}")), "{out}");
    assert_clean(&c, "install.sh with a new release", get, post);
    for port in [8001, 8002] {
        assert_eq!(running_release(&c, port), second);
    }

    // 3. A release that exits at start: refused, undone, reported; the
    // release before it serves throughout.
    fs::write(
        deploy.join(NAME),
        // Its migrations run (there are none new); it fails only to serve.
        "#!/bin/sh\n[ \"$1\" = migrate ] && exit 0\necho 'cannot start: no such table' >&2\nexit 1\n",
    )
    .unwrap();
    let get = start_gets(&c, 6, &[]);
    let post = start_posts(&c, 6, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let refused = c.sh("cd /root/deploy && ./install.sh");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("failed on {NAME}@8001: it exited"))
            && stderr.contains(&format!("the previous release {second} serves again")),
        "{stderr}"
    );
    eprintln!("install.sh refused the broken release in {took:.1?}");
    assert_clean(&c, "install.sh with a broken release", get, post);
    assert_eq!(current_release(&c), second);
    for port in [8001, 8002] {
        assert_eq!(running_release(&c, port), second);
    }

    // 4. rollback: the release before, one instance at a time, and back.
    with_marker(&exe, "\0release two", &deploy.join(NAME));
    let get = start_gets(&c, 6, &[]);
    let post = start_posts(&c, 6, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let out = c.sh_ok("cd /root/deploy && ./install.sh rollback");
    assert!(
        out.contains(&format!("release {first} serves again")),
        "{out}"
    );
    assert_clean(&c, "install.sh rollback", get, post);
    assert_eq!(current_release(&c), first);
    assert_eq!(running_release(&c, 8002), first);
    let out = c.sh_ok("cd /root/deploy && ./install.sh rollback");
    assert!(
        out.contains(&format!("release {second} serves again")),
        "{out}"
    );

    // 5. New ports (base-port 9001): the new instances start, nginx moves
    // to them, the old ones stop, and no request is lost.
    s.deploy(&deploy, &deploy_args(9001));
    let get = start_gets(&c, 8, NEW_CONNECTIONS);
    let post = start_posts(&c, 8, NEW_CONNECTIONS);
    std::thread::sleep(Duration::from_secs(1));
    let out = c.sh_ok("cd /root/deploy && ./install.sh");
    assert!(out.contains(&format!("stopped {NAME}@8001")), "{out}");
    assert_clean(&c, "a port change through install.sh", get, post);
    for port in [9001, 9002] {
        let env = c.sh_ok(&format!(
            "tr '\\0' '\\n' < /proc/$(systemctl show -P MainPID {NAME}@{port}.service)/environ"
        ));
        assert!(env.lines().any(|l| l == "LISTEN_FDS=1"), "{port}: {env}");
    }
    for port in [8001, 8002] {
        assert!(!c
            .sh(&format!("systemctl is-active --quiet {NAME}@{port}.socket"))
            .status
            .success());
    }
    let again = c.sh_ok("cd /root/deploy && ./install.sh");
    assert!(again.contains("nothing changed"), "{again}");

    // 5b. A changed socket unit (as a new manage may write): each instance's
    // socket is replaced in turn, not left "not functional until restarted"
    // with instances that start without it, and nginx is told to leave the
    // instance alone meanwhile, so that nothing waits in a closing socket.
    let socket = deploy.join(format!("systemd/{NAME}@.socket"));
    let unit = fs::read_to_string(&socket).unwrap();
    fs::write(&socket, unit.replace("Backlog=1024", "Backlog=2048")).unwrap();
    let get = start_gets(&c, 10, NEW_CONNECTIONS);
    let post = start_posts(&c, 10, NEW_CONNECTIONS);
    std::thread::sleep(Duration::from_secs(1));
    let out = c.sh_ok("cd /root/deploy && ./install.sh");
    assert!(out.contains(&format!("restarted {NAME}@9002")), "{out}");
    assert_clean(&c, "a changed socket unit through install.sh", get, post);
    let conf = fs::read_to_string(c.rootfs().join("etc/nginx/nginx.conf")).unwrap();
    assert!(
        !conf.contains(" down "),
        "an instance is left out of nginx:\n{conf}"
    );
    for port in [9001, 9002] {
        let env = c.sh_ok(&format!(
            "tr '\\0' '\\n' < /proc/$(systemctl show -P MainPID {NAME}@{port}.service)/environ"
        ));
        assert!(env.lines().any(|l| l == "LISTEN_FDS=1"), "{port}: {env}");
        // The kernel's own listening socket: its queue is the new Backlog.
        let listen = c.sh_ok(&format!("ss -Hltn 'sport = :{port}'"));
        let queue = listen.split_whitespace().nth(2).unwrap_or_default();
        assert_eq!(queue, "2048", "{port}: {listen}");
        assert!(instance_health(&c, port));
    }

    // Month-one operations: the access log as logrotate makes it, and
    // unattended security upgrades on.
    let log = c.sh_ok(&format!(
        "stat -c '%U:%G %a' /var/log/nginx/{NAME}.access.log"
    ));
    assert_eq!(log.trim(), "www-data:adm 640");
    c.sh_ok(
        "dpkg-query -W -f='${Status}' unattended-upgrades | grep -q 'ok installed' && \
         apt-config dump | grep -qx 'APT::Periodic::Unattended-Upgrade \"1\";'",
    );

    // 6. A crash loop ends in an alert: systemd gives the instance up and
    // the alert unit logs it and runs the operator's hook.
    fs::write(
        c.rootfs().join(format!("etc/{NAME}/on-failure")),
        "#!/bin/sh\necho \"hook ran for $1\"\n",
    )
    .unwrap();
    c.sh_ok(&format!("chmod 0755 /etc/{NAME}/on-failure"));
    fs::create_dir_all(c.rootfs().join(format!("opt/{NAME}/releases/broken"))).unwrap();
    fs::write(
        c.rootfs()
            .join(format!("opt/{NAME}/releases/broken/{NAME}")),
        "#!/bin/sh\n[ \"$1\" = migrate ] && exit 0\nexit 3\n",
    )
    .unwrap();
    c.sh_ok(&format!(
        "chmod 0755 /opt/{NAME}/releases/broken/{NAME} && ln -sfn releases/broken /opt/{NAME}/current && \
         systemctl kill -s KILL {NAME}@9002.service"
    ));
    let failed = eventually(Duration::from_secs(30), || {
        (c.sh_ok(&format!(
            "systemctl show -P ActiveState {NAME}@9002.service"
        ))
        .trim()
            == "failed")
            .then_some(())
    });
    assert!(
        failed.is_some(),
        "the crash loop did not end:\n{}",
        c.sh_ok(&format!(
            "systemctl status --no-pager {NAME}@9002.service || true"
        ))
    );
    let alert = eventually(Duration::from_secs(15), || {
        let log = c.sh_ok("journalctl --no-pager -o cat -p crit -t shop-alert");
        log.contains(&format!("{NAME}@9002.service failed"))
            .then_some(log)
    })
    .unwrap_or_else(|| panic!("no alert in the journal"));
    eprintln!("alert: {}", alert.trim());
    // The hook's own output reaches the journal a moment after the alert.
    let hook = eventually(Duration::from_secs(15), || {
        let log = c.sh_ok("journalctl --no-pager -o cat -u 'shop-alert@*'");
        log.contains(&format!("hook ran for {NAME}@9002.service"))
            .then_some(())
    });
    assert!(
        hook.is_some(),
        "{}",
        c.sh_ok("journalctl --no-pager -o cat -u 'shop-alert@*'")
    );
    // Every unit's exposure, as systemd-analyze security rates it (README).
    for (unit, most) in [
        (format!("{NAME}@9001.service"), 1.1),
        (format!("{NAME}-alert@{NAME}@9002.service.service"), 2.0),
        // Debian's unit with deploy-config's drop-in (9.6 without it).
        ("nginx.service".to_owned(), 3.0),
    ] {
        let level = super::exposure(&c, &unit);
        eprintln!("systemd-analyze security {unit}: {level}");
        assert!(level <= most, "{unit}: exposure {level} > {most}");
    }
    // install.sh brings the given-up instance back.
    c.sh_ok(&format!(
        "ln -sfn releases/{second} /opt/{NAME}/current && cd /root/deploy && ./install.sh"
    ));
    assert!(instance_health(&c, 9002));
    assert_eq!(through_nginx(&c, SITE, "/healthz"), "200");
}
