//! deploy-config on a real systemd (#10): a fresh `startproject` project,
//! built `--release`, installed by its own install.sh on a minimal Debian 12
//! booted in a container; its instances socket-activated behind nginx, and
//! restarts under load that fail no request.

mod container;
mod letsencrypt;
mod releases;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use container::{debian_tree, Container};

use crate::support::deploy::{site, Certs, Netns, Site};
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

/// `cp -R FROM INTO`: a copy of the directory `from` at `into` (inside it
/// when `into` exists).
fn copy_tree(from: &Path, into: &Path) {
    let copy = std::process::Command::new("cp")
        .arg("-R")
        .arg(from)
        .arg(into)
        .status()
        .unwrap();
    assert!(
        copy.success(),
        "cp -R {} {}",
        from.display(),
        into.display()
    );
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

#[test]
fn one_host_installed_by_install_sh_on_debian12_restarts_without_losing_a_request() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);

    let c = Container::boot(&tree, "one");
    let deploy = c.rootfs().join("root/deploy");
    // The defaults of a real site, except: a certificate of a test CA
    // instead of Let's Encrypt, and a rate limit above what one wrk client
    // sends.
    let certs = Certs::make(&s.scratch.join("certs"));
    let tls_dir = c.rootfs().join("etc/ssl/shop");
    fs::create_dir_all(&tls_dir).unwrap();
    fs::copy(&certs.chain, tls_dir.join("chain.pem")).unwrap();
    fs::copy(&certs.key, tls_dir.join("key.pem")).unwrap();
    s.deploy(
        &deploy,
        &[
            "--domain",
            "localhost",
            "--tls",
            "custom",
            "--tls-certificate",
            "/etc/ssl/shop/chain.pem",
            "--tls-certificate-key",
            "/etc/ssl/shop/key.pem",
            "--rate-limit",
            "1000000r/s",
            "--rate-limit-burst",
            "100000",
        ]
        .map(String::from),
    );
    fs::copy(&exe, deploy.join(NAME)).unwrap();
    copy_tree(&s.project.join("static"), &deploy);

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
    eprintln!(
        "six restarts and a SIGKILL under wrk -c8: {} requests, {} non-2xx, socket errors: {}, longest {}\nnginx:\n{errors}",
        load.requests,
        load.non_2xx,
        if load.socket_errors.is_empty() { "none" } else { &load.socket_errors },
        load.latency_max
    );
    assert_eq!(load.non_2xx, 0, "{}\nnginx:\n{errors}", load.text);
    assert!(
        load.socket_errors.is_empty(),
        "{}\nnginx:\n{errors}",
        load.text
    );
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
    eprintln!(
        "install.sh with a new release under wrk -c8: {} requests, {} non-2xx, socket errors: {}, longest {}",
        load.requests,
        load.non_2xx,
        if load.socket_errors.is_empty() { "none" } else { &load.socket_errors },
        load.latency_max
    );
    assert_eq!(load.non_2xx, 0, "{}\nnginx:\n{errors}", load.text);
    assert!(load.socket_errors.is_empty(), "{}", load.text);
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

#[test]
fn three_machines_each_installed_by_its_own_install_sh_restart_without_losing_a_request() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);

    // One private subnet between the four machines, on a bridge in a
    // namespace of its own; nothing reaches this machine's network.
    let (web_ip, app_ips, db_ip) = (
        "10.231.78.10",
        ["10.231.78.20", "10.231.78.21"],
        "10.231.78.30",
    );
    let mut net = Netns::with_prefix("ms");
    let machines = [
        ("web-1", "web", web_ip),
        ("app-1", "app1", app_ips[0]),
        ("app-2", "app2", app_ips[1]),
        ("db-1", "db", db_ip),
    ];
    let namespaces: Vec<String> = machines
        .iter()
        .map(|(_, short, ip)| net.add_machine(short, ip))
        .collect();

    let out = s.scratch.join("out");
    s.deploy(
        &out,
        &[
            "--domain",
            "localhost",
            "--tls",
            "off",
            "--rate-limit",
            "1000000r/s",
            "--rate-limit-burst",
            "100000",
            "--web",
            web_ip,
            "--app",
            &app_ips.join(","),
            "--db",
            db_ip,
        ]
        .map(String::from),
    );

    // Declared after `net`, so the containers stop before the namespaces go.
    let containers: Vec<Container> = machines
        .iter()
        .zip(&namespaces)
        .map(|((dir, short, _), ns)| {
            let c = Container::boot_in(&tree, short, Some(ns));
            let deploy = c.rootfs().join("root/deploy");
            copy_tree(&out.join(dir), &deploy);
            if dir.starts_with("app") {
                fs::copy(&exe, deploy.join(NAME)).unwrap();
            }
            if dir.starts_with("web") {
                copy_tree(&s.project.join("static"), &deploy);
            }
            c
        })
        .collect();
    let [web, app1, app2, db] = [
        &containers[0],
        &containers[1],
        &containers[2],
        &containers[3],
    ];

    // db first, then the apps, then web: each by its own install.sh, twice.
    for c in [db, app1, app2, web] {
        if c.name == app1.name || c.name == app2.name {
            // As the README says: db's install.sh made the password; the
            // operator copies it to the app machines (root, 0600).
            let rel = format!("etc/{NAME}/db-password");
            let to = c.rootfs().join(&rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(db.rootfs().join(&rel), &to).unwrap();
            fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        let first = c.sh_ok("cd /root/deploy && ./install.sh");
        assert!(first.contains("is set up;"), "{first}");
        let second = c.sh_ok("cd /root/deploy && ./install.sh");
        assert!(second.contains("nothing changed"), "{}: {second}", c.name);
    }
    // The migrations ran once: on app-1 (its two instances shared the one
    // run of the oneshot), found nothing to do on app-2.
    let migrate_log = |c: &Container| {
        String::from_utf8_lossy(
            &c.sh(&format!(
                "journalctl -u {NAME}-migrate.service -o cat --no-pager"
            ))
            .stdout,
        )
        .into_owned()
    };
    let (log1, log2) = (migrate_log(app1), migrate_log(app2));
    assert_eq!(
        log1.matches("applied 20260101000000_create_notes").count(),
        1,
        "{log1}"
    );
    assert!(
        !log2.contains("applied 2026") && log2.contains("no migrations to apply"),
        "{log2}"
    );
    assert_eq!(
        db.sh_ok(&format!(
            "runuser -u postgres -- psql -tAc 'SELECT count(*) FROM _sqlx_migrations' {NAME}"
        ))
        .trim(),
        "1"
    );
    assert_eq!(through_nginx(web, PLAIN, "/healthz"), "200");
    for app in [app1, app2] {
        let level = exposure(app, &format!("{NAME}@{}.service", PORTS[0]));
        assert!(level <= 1.2, "{}: exposure {level}", app.name);
    }
    // PostgreSQL answers the app machines only.
    let pg = |c: &Container| {
        c.sh(&format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{db_ip}/5432'"
        ))
        .status
        .success()
    };
    assert!(pg(app1), "app-1 cannot reach PostgreSQL");
    assert!(!pg(web), "web reached PostgreSQL");
    // The daily pg_dump: once the database exists, a run leaves a dump.
    // (install.sh created the database.)
    db.sh_ok(&format!(
        "systemctl start {NAME}-pg-dump.service && \
         systemctl is-enabled {NAME}-pg-dump.timer && ls /var/backups/{NAME}/{NAME}-*.dump"
    ));
    nginx_errors(web);

    // Under load through web: every instance on both app machines restarted
    // in turn, each after the one before answers; then one killed.
    let wrk = start_load(web, PLAIN, 10);
    std::thread::sleep(Duration::from_secs(1));
    for (app, ip) in [(app1, app_ips[0]), (app2, app_ips[1])] {
        for port in PORTS {
            app.sh_ok(&format!("systemctl restart {NAME}@{port}.service"));
            eventually(Duration::from_secs(10), || {
                app.sh(&format!(
                    "curl -fsS --max-time 5 http://{ip}:{port}/healthz"
                ))
                .status
                .success()
                .then_some(())
            })
            .unwrap_or_else(|| panic!("{}: {NAME}@{port} did not come back", app.name));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    app2.sh_ok(&format!(
        "systemctl kill -s KILL {NAME}@{}.service",
        PORTS[1]
    ));
    let load = finish_load(wrk);
    let errors = nginx_errors(web);
    eprintln!(
        "three machines, four restarts and a SIGKILL under wrk -c8: {} requests, {} non-2xx, socket errors: {}, longest {}\nnginx:\n{errors}",
        load.requests,
        load.non_2xx,
        if load.socket_errors.is_empty() { "none" } else { &load.socket_errors },
        load.latency_max
    );
    assert_eq!(load.non_2xx, 0, "{}\nnginx:\n{errors}", load.text);
    assert!(
        load.socket_errors.is_empty(),
        "{}\nnginx:\n{errors}",
        load.text
    );
    eventually(Duration::from_secs(10), || {
        app2.sh(&format!(
            "curl -fsS --max-time 5 http://{}:{}/healthz",
            app_ips[1], PORTS[1]
        ))
        .status
        .success()
        .then_some(())
    })
    .expect("the killed instance is restarted");
    drop(containers);
    drop(net);
}
