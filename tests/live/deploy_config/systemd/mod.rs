//! deploy-config on a real systemd (#10): a fresh `startproject` project,
//! built `--release`, installed by its own install.sh on a minimal Debian 12
//! booted in a container; its instances socket-activated behind nginx, and
//! restarts, a frozen instance (the watchdog) and recycling under load that
//! fail no request, with the memory bounds systemd applies.

mod container;
mod letsencrypt;
mod releases;
mod three_machines;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use container::{debian_tree, Container};

use crate::support::deploy::{site, Certs, Site};
use crate::support::{cargo, eventually, shared_target_dir};

const NAME: &str = "shop";
const PORTS: [u16; 2] = [8001, 8002];
/// The one-host site, with a test certificate (`tls = "custom"`).
const SITE: &str = "https://localhost:443";
/// The three-machine site, plain HTTP.
const PLAIN: &str = "http://localhost:80";

/// What wrk reports for one run.
#[derive(Debug, Default)]
struct Load {
    requests: u64,
    non_2xx: u64,
    socket_errors: String,
    latency_max: String,
    text: String,
}

/// An nginx reload closes its idle keep-alive connections to clients, which
/// browsers retry and wrk counts as errors: while nginx reloads, every
/// request comes on a connection of its own, so what is measured is what
/// happens to requests on their way to the app.
const NEW_CONNECTIONS: &[&str] = &["-H", "Connection: close"];

/// What lets the load tests' few clients past the flood guard.
const NO_FLOOD_GUARD: [&str; 4] = ["--rate-limit", "1000000r/s", "--rate-limit-burst", "100000"];

/// `site` then [`NO_FLOOD_GUARD`] then `more`, as deploy-config's flags.
fn site_flags(site: &[&str], more: &[&str]) -> Vec<String> {
    site.iter()
        .chain(&NO_FLOOD_GUARD)
        .chain(more)
        .map(|s| s.to_string())
        .collect()
}

/// deploy-config's flags for a plain-HTTP site on localhost whose flood
/// guard lets the load tests' few clients through, then `more`.
fn plain_site_args(more: &[&str]) -> Vec<String> {
    site_flags(&["--domain", "localhost", "--tls", "off"], more)
}

/// wrk inside the container against nginx on its loopback at `site`
/// (`https://localhost:443`), for `seconds`.
fn start_load(c: &Container, site: &str, seconds: u32) -> Child {
    start_wrk(c, site, seconds, &[])
}

/// wrk as [`start_load`], with more arguments (`--timeout 10s`).
fn start_wrk(c: &Container, site: &str, seconds: u32, extra: &[&str]) -> Child {
    c.command("wrk")
        .args(["-t2", "-c8", &format!("-d{seconds}s"), "--latency"])
        .args(extra)
        .arg(format!("{site}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk in the container")
}

fn finish_load(wrk: Child) -> Load {
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut load = Load {
        text: text.clone(),
        ..Load::default()
    };
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            load.requests = n.trim().parse().unwrap();
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx = n.trim().parse().unwrap();
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            load.socket_errors = errors.trim().to_owned();
        } else if let Some(stats) = line.strip_prefix("Latency ") {
            if load.latency_max.is_empty() {
                load.latency_max = stats.split_whitespace().nth(2).unwrap_or("").to_owned();
            }
        }
    }
    assert!(load.requests > 0, "no requests counted:\n{text}");
    load
}

/// Prints one run's figures (BENCHMARKS.md quotes them) and fails the test
/// when a request failed: a non-2xx answer or a socket error; `errors` are
/// nginx's, counted by kind.
#[allow(clippy::print_stderr)]
fn assert_no_failures(what: &str, load: &Load, errors: &str) {
    eprintln!(
        "{what} under wrk -c8: {} requests, {} non-2xx, socket errors: {}, longest {}\nnginx:\n{errors}",
        load.requests,
        load.non_2xx,
        if load.socket_errors.is_empty() { "none" } else { &load.socket_errors },
        load.latency_max
    );
    assert_eq!(load.non_2xx, 0, "{what}: {}\nnginx:\n{errors}", load.text);
    assert!(
        load.socket_errors.is_empty(),
        "{what}: {}\nnginx:\n{errors}",
        load.text
    );
}

/// Status of the health path asked of one instance directly.
fn instance_health(c: &Container, port: u16) -> bool {
    c.sh(&format!(
        "curl -fsS --max-time 5 http://127.0.0.1:{port}/healthz"
    ))
    .status
    .success()
}

/// The status nginx answers for `path` at `site`; the test certificate's
/// CA is not installed in the container, hence `-k`.
fn through_nginx(c: &Container, site: &str, path: &str) -> String {
    c.sh_ok(&format!(
        "curl -ksS --max-time 10 -o /dev/null -w '%{{http_code}}' {site}{path}"
    ))
}

/// The nginx errors of the last run, counted by kind.
fn nginx_errors(c: &Container) -> String {
    c.sh_ok(
        "cut -d' ' -f6- /var/log/nginx/error.log | sed 's/, client.*//; s/^\\*[0-9]* //' | sort | uniq -c | sort -rn; : > /var/log/nginx/error.log",
    )
}

/// `cp -RT FROM TO`: the directory `from` copied to `to`, over what `to`
/// already holds.
fn copy_tree(from: &Path, to: &Path) {
    let copy = std::process::Command::new("cp")
        .arg("-RT")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(copy.success(), "cp -RT {} {}", from.display(), to.display());
}

/// The site's app built `--release` into the shared target directory.
fn release_build(s: &Site) -> PathBuf {
    let build = cargo(&s.project)
        .args(["build", "--release", "--quiet"])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "cargo build --release:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    shared_target_dir().join("release").join(NAME)
}

/// The one-host site's flags: the defaults of a real site, except a
/// certificate of a test CA instead of Let's Encrypt and no flood guard;
/// then `more`.
fn one_host_args(more: &[&str]) -> Vec<String> {
    site_flags(
        &[
            "--domain",
            "localhost",
            "--tls",
            "custom",
            "--tls-certificate",
            "/etc/ssl/shop/chain.pem",
            "--tls-certificate-key",
            "/etc/ssl/shop/key.pem",
        ],
        more,
    )
}

#[test]
fn one_host_installed_by_install_sh_on_debian12_restarts_without_losing_a_request() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);

    let c = Container::boot(&tree, "one");
    let deploy = c.rootfs().join("root/deploy");
    let certs = Certs::make(&s.scratch.join("certs"));
    let tls_dir = c.rootfs().join("etc/ssl/shop");
    fs::create_dir_all(&tls_dir).unwrap();
    fs::copy(&certs.chain, tls_dir.join("chain.pem")).unwrap();
    fs::copy(&certs.key, tls_dir.join("key.pem")).unwrap();
    s.deploy(&deploy, &one_host_args(&[]));
    fs::copy(&exe, deploy.join(NAME)).unwrap();
    copy_tree(&s.project.join("static"), &deploy.join("static"));

    // Installed from nothing on a minimal Debian: packages, app, nginx,
    // firewall. A second run changes nothing and says so.
    let started = Instant::now();
    let first = c.sh_ok("cd /root/deploy && ./install.sh");
    eprintln!("install.sh (first run) took {:.1?}", started.elapsed());
    assert!(
        first.contains("==> done: this machine is set up;"),
        "{first}"
    );
    let second = c.sh_ok("cd /root/deploy && ./install.sh");
    assert!(
        second.contains("==> done: this machine was already set up; nothing changed"),
        "{second}"
    );

    // Logs are bounded: the journal by a drop-in, nginx's by logrotate.
    c.sh_ok(&format!(
        "grep -qx SystemMaxUse=1G /etc/systemd/journald.conf.d/{NAME}.conf && \
         systemctl is-enabled logrotate.timer && test -f /etc/logrotate.d/nginx"
    ));

    // nginx files that nginx -t refuses: install.sh fails saying so, and
    // the files in force stay the previous ones.
    let http_conf = deploy.join(format!("nginx/{NAME}/sites/http.conf"));
    let good = fs::read_to_string(&http_conf).unwrap();
    fs::write(&http_conf, format!("{good}\nthis_is_not_a_directive on;\n")).unwrap();
    let refused = c.sh("cd /root/deploy && ./install.sh");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("nginx -t refused the new configuration"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(c.rootfs().join(format!("etc/nginx/{NAME}/sites/http.conf"))).unwrap(),
        good
    );
    assert_eq!(through_nginx(&c, SITE, "/healthz"), "200");
    fs::write(&http_conf, good).unwrap();
    let again = c.sh_ok("cd /root/deploy && ./install.sh");
    assert!(again.contains("nothing changed"), "{again}");

    // Each instance is socket-activated and answers through nginx.
    for port in PORTS {
        let env = c.sh_ok(&format!(
            "tr '\\0' '\\n' < /proc/$(systemctl show -P MainPID {NAME}@{port}.service)/environ"
        ));
        assert!(env.lines().any(|l| l == "LISTEN_FDS=1"), "{port}: {env}");
    }
    assert_eq!(through_nginx(&c, SITE, "/healthz"), "200");
    assert_eq!(through_nginx(&c, SITE, "/static/css/site.css"), "200");
    assert_eq!(
        c.sh_ok(&format!("curl -ksS {SITE}/ | grep -c '{NAME} is running'"))
            .trim(),
        "1"
    );
    assert_eq!(through_nginx(&c, "http://localhost:80", "/x"), "308");
    let level = exposure(&c, &format!("{NAME}@{}.service", PORTS[0]));
    assert!(level <= 1.1, "exposure {level}");
    nginx_errors(&c);

    // Under load through nginx: each instance restarted in turn, three
    // times, each restart waiting for the instance to answer again; then
    // one instance killed outright.
    let wrk = start_load(&c, SITE, 12);
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..3 {
        for port in PORTS {
            c.sh_ok(&format!("systemctl restart {NAME}@{port}.service"));
            eventually(Duration::from_secs(10), || {
                instance_health(&c, port).then_some(())
            })
            .unwrap_or_else(|| panic!("{NAME}@{port} did not come back"));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    c.sh_ok(&format!(
        "systemctl kill -s KILL {NAME}@{}.service",
        PORTS[0]
    ));
    let load = finish_load(wrk);
    let errors = nginx_errors(&c);
    assert_no_failures("six restarts and a SIGKILL", &load, &errors);
    // The killed instance is back (systemd restarts it after RestartSec).
    eventually(Duration::from_secs(10), || {
        (c.sh(&format!(
            "systemctl is-active --quiet {NAME}@{}.service",
            PORTS[0]
        ))
        .status
        .success()
            && instance_health(&c, PORTS[0]))
        .then_some(())
    })
    .expect("the killed instance is restarted");

    // A frozen instance (SIGSTOP: it keeps its socket and answers nothing,
    // as a deadlocked one would): systemd's watchdog kills and restarts it,
    // and nginx retries the requests it held on the other one. wrk waits
    // up to 30 s for an answer: held requests are slow, not failed.
    let frozen = PORTS[0];
    let main_pid = |c: &Container| {
        c.sh_ok(&format!(
            "systemctl show -P MainPID {NAME}@{frozen}.service"
        ))
        .trim()
        .to_owned()
    };
    let pid = main_pid(&c);
    let wrk = start_wrk(&c, SITE, 25, &["--timeout", "30s"]);
    std::thread::sleep(Duration::from_secs(1));
    let stopped = Instant::now();
    c.sh_ok(&format!("kill -STOP {pid}"));
    let back = eventually(Duration::from_secs(40), || {
        let now = main_pid(&c);
        (now != pid && now != "0" && instance_health(&c, frozen)).then(|| stopped.elapsed())
    })
    .unwrap_or_else(|| panic!("{NAME}@{frozen} was frozen and never restarted"));
    let load = finish_load(wrk);
    let errors = nginx_errors(&c);
    assert_no_failures("an instance frozen with SIGSTOP", &load, &errors);
    let journal = c.sh_ok(&format!(
        "journalctl -q -u {NAME}@{frozen}.service | grep -c 'Watchdog timeout' || true"
    ));
    assert!(
        journal.trim().parse::<u32>().unwrap_or(0) >= 1,
        "the watchdog did not restart it: {}",
        c.sh_ok(&format!(
            "journalctl -q -u {NAME}@{frozen}.service | tail -20"
        ))
    );
    eprintln!("a frozen instance was restarted by the watchdog {back:.1?} after SIGSTOP (WatchdogSec=10, RestartSec=1)");
    // WatchdogSec + the ping interval's slack + RestartSec + a start: well
    // under the 30 s nginx would wait.
    assert!(
        back < Duration::from_secs(25),
        "restarted only after {back:?}"
    );

    // A new release through install.sh under load: it restarts the
    // instances one at a time, each after the one before answers.
    let mut binary = fs::read(deploy.join(NAME)).unwrap();
    binary.extend_from_slice(b"\0new release");
    fs::write(deploy.join(NAME), binary).unwrap();
    let wrk = start_load(&c, SITE, 6);
    std::thread::sleep(Duration::from_secs(1));
    let third = c.sh_ok("cd /root/deploy && ./install.sh");
    for port in PORTS {
        assert!(
            third.contains(&format!("restarted {NAME}@{port}")),
            "{third}"
        );
    }
    let load = finish_load(wrk);
    let errors = nginx_errors(&c);
    assert_no_failures("install.sh with a new release", &load, &errors);

    // Recycling (`recycle-after`, systemd's RuntimeMaxSec with a random
    // extra), as short as it goes: under load every instance is stopped
    // and started again, more than once, and no request fails.
    let recycled = c.rootfs().join("root/recycled");
    s.deploy(
        &recycled,
        &one_host_args(&[
            "--recycle-after",
            "10s",
            "--memory-high",
            "512M",
            "--memory-max",
            "1G",
        ]),
    );
    fs::copy(deploy.join(NAME), recycled.join(NAME)).unwrap();
    copy_tree(&s.project.join("static"), &recycled.join("static"));
    let restarts = |c: &Container, port: u16| -> u32 {
        c.sh_ok(&format!(
            "systemctl show -P NRestarts {NAME}@{port}.service"
        ))
        .trim()
        .parse()
        .unwrap_or(0)
    };
    c.sh_ok("cd /root/recycled && ./install.sh");
    // systemd holds each instance to the memory bounds.
    for port in PORTS {
        let bounds = c.sh_ok(&format!(
            "systemctl show -P MemoryHigh {NAME}@{port}.service; systemctl show -P MemoryMax {NAME}@{port}.service"
        ));
        assert_eq!(bounds, "536870912\n1073741824\n", "{NAME}@{port}");
    }
    let before: Vec<u32> = PORTS.iter().map(|&p| restarts(&c, p)).collect();
    // A recycled instance is started again after RestartSec=1: requests
    // sent to its socket meanwhile wait (wrk's 2 s default would count a
    // slow one on a busy machine as failed), none is refused.
    let wrk = start_wrk(&c, SITE, 30, &["--timeout", "10s"]);
    let load = finish_load(wrk);
    let errors = nginx_errors(&c);
    assert_no_failures("instances recycled every 10-12 s", &load, &errors);
    for (i, port) in PORTS.iter().enumerate() {
        let after = restarts(&c, *port);
        assert!(
            after >= before[i] + 2,
            "{NAME}@{port} was recycled {} times in 30 s: {}",
            after - before[i],
            c.sh_ok(&format!(
                "journalctl -q -u {NAME}@{port}.service | tail -20"
            ))
        );
    }
    let limit = c.sh_ok(&format!(
        "journalctl -q -u {NAME}@{}.service | grep -c 'runtime time limit' || true",
        PORTS[0]
    ));
    assert!(limit.trim().parse::<u32>().unwrap_or(0) >= 2, "{limit}");
}

/// `systemd-analyze security`'s overall exposure of a unit in `c`.
fn exposure(c: &Container, unit: &str) -> f64 {
    let line = c.sh_ok(&format!(
        "systemd-analyze security --no-pager {unit} | tail -1"
    ));
    line.split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}
