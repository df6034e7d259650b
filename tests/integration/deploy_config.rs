//! `manage deploy-config`: the generated files proven by the real tools
//! (nginx -t, gixy, systemd-analyze, shellcheck, nft, sslyze), served for
//! real on loopback and across network namespaces, and every bad input
//! refused without touching the disk.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::deploy_support::{run, run_ok, tool, venv_tool, Certs, Netns};
use crate::helpers::{
    self, build_project, eventually, free_port, get, manage, request, tree, Running,
};

/// A generated project plus a scratch directory for nginx's pid, logs,
/// temp files, static root and certificates.
struct Site {
    _tmp: tempfile::TempDir,
    name: String,
    project: PathBuf,
    scratch: PathBuf,
}

fn site(name: &str) -> Site {
    let (tmp, project) = helpers::generate(name);
    let scratch = tmp.path().join("scratch");
    for dir in ["logs", "tmp", "static", "le/localhost"] {
        fs::create_dir_all(scratch.join(dir)).unwrap();
    }
    Site {
        _tmp: tmp,
        name: name.into(),
        project,
        scratch,
    }
}

impl Site {
    /// The advanced settings that point nginx into the scratch directory.
    fn test_args(&self, http: u16, https: u16) -> Vec<String> {
        let t = |p: &str| self.scratch.join(p).display().to_string();
        [
            "--domain",
            "localhost",
            "--http-port",
            &http.to_string(),
            "--https-port",
            &https.to_string(),
            "--nginx-user",
            "root",
            "--nginx-pid",
            &t("nginx.pid"),
            "--nginx-log-dir",
            &t("logs"),
            "--nginx-temp-dir",
            &t("tmp"),
            "--static-root",
            &t("static"),
            "--letsencrypt-dir",
            &t("le"),
            "--binary",
            "/usr/bin/true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn deploy(&self, out: &Path, args: &[String]) {
        manage()
            .current_dir(&self.project)
            .args(["deploy-config", "--out"])
            .arg(out)
            .args(args)
            .assert()
            .success();
    }

    fn certs(&self) -> Certs {
        let certs = Certs::make(&self.scratch.join("certs"));
        // letsencrypt mode reads certbot's layout.
        let le = self.scratch.join("le/localhost");
        fs::copy(&certs.chain, le.join("fullchain.pem")).unwrap();
        fs::copy(&certs.key, le.join("privkey.pem")).unwrap();
        certs
    }

    /// nginx for a generated web directory, mime.types beside it as
    /// /etc/nginx has it.
    fn nginx(&self, web: &Path) -> Command {
        fs::copy("/etc/nginx/mime.types", web.join("nginx/mime.types")).unwrap();
        let mut cmd = Command::new(tool("nginx", "nginx"));
        cmd.arg("-e")
            .arg(self.scratch.join("logs/early.log"))
            .arg("-c")
            .arg(web.join("nginx/nginx.conf"));
        cmd
    }
}

fn tls_args(mode: &str, certs: &Certs) -> Vec<String> {
    let mut args = vec!["--tls".to_owned(), mode.to_owned()];
    if mode == "custom" {
        args.extend([
            "--tls-certificate".to_owned(),
            certs.chain.display().to_string(),
            "--tls-certificate-key".to_owned(),
            certs.key.display().to_string(),
        ]);
    }
    args
}

/// `Overall exposure level for NAME@i.service: 1.1 OK`.
fn exposure(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure in {line:?}"))
}

/// The machines of a generated tree: the tree itself in the one-machine
/// layout, else its `web-1/`, `app-1/`, ... directories.
fn host_dirs(out: &Path) -> Vec<PathBuf> {
    if out.join("install.sh").is_file() {
        return vec![out.to_path_buf()];
    }
    let mut hosts: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    hosts.sort();
    hosts
}

/// Every validator over one generated tree; returns the worst exposure.
fn validate_tree(s: &Site, out: &Path) -> f64 {
    let mut worst: f64 = 0.0;
    let mut seen = (false, false);
    for (i, host) in host_dirs(out).into_iter().enumerate() {
        let what = host.display().to_string();
        if host.join("nginx").is_dir() {
            seen.0 = true;
            run_ok(s.nginx(&host).arg("-t"));
            let gixy = run(Command::new(venv_tool("gixy")).arg(host.join("nginx/nginx.conf")));
            let report = String::from_utf8_lossy(&gixy.stdout);
            assert!(
                gixy.status.success() && report.contains("No issues found"),
                "gixy on {what}:\n{report}{}",
                String::from_utf8_lossy(&gixy.stderr)
            );
        }
        if host.join("systemd").is_dir() {
            seen.1 = true;
            // Instances as systemd would load them: NAME@PORT.{socket,service}.
            let units = tempfile::tempdir_in(&s.scratch).unwrap();
            let name = &s.name;
            let mut files = Vec::new();
            for port in ["8001", "8002"] {
                for kind in ["socket", "service"] {
                    let to = units.path().join(format!("{name}@{port}.{kind}"));
                    fs::copy(host.join(format!("systemd/{name}@.{kind}")), &to).unwrap();
                    files.push(to);
                }
            }
            let target = units.path().join(format!("{name}.target"));
            fs::copy(host.join(format!("systemd/{name}.target")), &target).unwrap();
            files.push(target);
            let analyze = tool("systemd-analyze", "systemd");
            let verify = run(Command::new(&analyze).arg("verify").args(&files));
            assert!(
                verify.status.success() && verify.stderr.is_empty(),
                "systemd-analyze verify on {what} (any output fails: unknown keys only warn):\n{}",
                String::from_utf8_lossy(&verify.stderr)
            );
            let security = run_ok(
                Command::new(&analyze)
                    .args(["security", "--offline=true", "--no-pager"])
                    .arg(host.join(format!("systemd/{name}@.service"))),
            );
            let level = exposure(&String::from_utf8_lossy(&security.stdout));
            assert!(level <= 2.0, "exposure {level} > 2.0 for {what}");
            worst = worst.max(level);
        }
        run_ok(Command::new(tool("shellcheck", "shellcheck")).arg(host.join("install.sh")));
        let rules: Vec<PathBuf> = fs::read_dir(host.join("nftables"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(rules.len(), 1, "host {i}: {rules:?}");
        run_ok(
            Command::new(tool("nft", "nftables"))
                .arg("-c")
                .arg("-f")
                .arg(&rules[0]),
        );
    }
    assert!(seen.0 && seen.1, "no web or app files in {}", out.display());
    worst
}

#[test]
fn defaults_give_a_complete_hardened_set() {
    let s = site("mysite");
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .success()
        .stderr(predicate::str::contains("Writing").and(predicate::str::contains("warning").not()));
    let out = s.project.join("deploy");
    assert_eq!(
        tree(&out),
        [
            "README.md",
            "install.sh",
            "nftables/",
            "nftables/mysite.nft",
            "nginx/",
            "nginx/mysite/",
            "nginx/mysite/sites/",
            "nginx/mysite/sites/http.conf",
            "nginx/mysite/sites/https.conf",
            "nginx/mysite/snippets/",
            "nginx/mysite/snippets/proxy.conf",
            "nginx/mysite/snippets/security-headers.conf",
            "nginx/nginx.conf",
            "systemd/",
            "systemd/mysite.target",
            "systemd/mysite@.service",
            "systemd/mysite@.socket",
        ]
    );
    let read = |p: &str| {
        fs::read_to_string(out.join(p))
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    };
    let headers = read("nginx/mysite/snippets/security-headers.conf");
    assert!(headers.contains("Strict-Transport-Security \"max-age=63072000; includeSubDomains\""));
    assert!(read("nginx/mysite/sites/https.conf")
        .contains("ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem;"));
    let mode = fs::metadata(out.join("install.sh")).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o755
    );
    let readme = read("README.md");
    for needle in [
        "Rolling restart",
        "systemctl restart mysite@$port.service",
        "CERTBOT_EMAIL",
        "sudo ./install.sh",
    ] {
        assert!(readme.contains(needle), "README lacks {needle:?}");
    }
    insta::assert_snapshot!("deploy_nginx_conf", read("nginx/nginx.conf"));
    insta::assert_snapshot!("deploy_https_conf", read("nginx/mysite/sites/https.conf"));
    insta::assert_snapshot!("deploy_service_unit", read("systemd/mysite@.service"));
    insta::assert_snapshot!("deploy_socket_unit", read("systemd/mysite@.socket"));
}

#[test]
fn every_layout_and_tls_mode_passes_the_validators() {
    let s = site("valsite");
    let certs = s.certs();
    let mut worst: f64 = 0.0;
    for three in [false, true] {
        for mode in ["off", "custom", "letsencrypt"] {
            let out = s.scratch.join(format!("out-{three}-{mode}"));
            let mut args = s.test_args(18080, 18443);
            args.extend(tls_args(mode, &certs));
            if three {
                args.extend(
                    [
                        "--web",
                        "10.0.0.10",
                        "--app",
                        "10.0.0.20,10.0.0.21",
                        "--db",
                        "10.0.0.30",
                    ]
                    .map(String::from),
                );
            }
            s.deploy(&out, &args);
            let hosts: Vec<String> = tree(&out)
                .into_iter()
                .filter(|p| p.ends_with("/install.sh"))
                .collect();
            if three {
                assert_eq!(
                    hosts,
                    [
                        "app-1/install.sh",
                        "app-2/install.sh",
                        "db-1/install.sh",
                        "web-1/install.sh"
                    ]
                );
                let hba = fs::read_to_string(out.join("db-1/postgres/pg_hba.conf")).unwrap();
                assert!(
                    hba.contains("10.0.0.20/32    scram-sha-256") && hba.contains("10.0.0.21/32")
                );
                let socket = fs::read_to_string(out.join("app-2/systemd/valsite@.socket")).unwrap();
                assert!(socket.contains("ListenStream=10.0.0.21:%i"), "{socket}");
                assert!(socket.contains("IPAddressAllow=10.0.0.10\n"), "{socket}");
            }
            worst = worst.max(validate_tree(&s, &out));
        }
    }
    assert!(worst > 0.0 && worst <= 2.0, "exposure {worst}");
}

/// Two free consecutive loopback ports.
fn consecutive_ports() -> u16 {
    (0..50)
        .find_map(|_| {
            let base = free_port();
            let next = base.checked_add(1)?;
            std::net::TcpListener::bind(("127.0.0.1", next)).ok()?;
            Some(base)
        })
        .expect("two consecutive free ports")
}

/// Every line a process has printed to stderr so far.
fn drain(r: &Running) -> Vec<String> {
    r.stderr.try_iter().collect()
}

struct Https {
    curl: PathBuf,
    ca: PathBuf,
    port: u16,
}

impl Https {
    /// (status, headers, body) for a GET over TLS, name `localhost`.
    fn get(&self, path: &str) -> (u16, Vec<(String, String)>, String) {
        let out = run(Command::new(&self.curl)
            .args(["-sS", "--max-time", "10", "-D", "-", "--cacert"])
            .arg(&self.ca)
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", self.port))
            .arg(format!("https://localhost:{}{path}", self.port)));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return (
                0,
                Vec::new(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        };
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers, body.to_owned())
    }
}

fn headers_named<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn nginx_in_front_of_two_instances_on_loopback() {
    let s = site("shop");
    let exe = build_project(&s.project, "shop");
    let certs = s.certs();
    let static_root = s.scratch.join("static");
    fs::create_dir_all(static_root.join("css")).unwrap();
    fs::write(static_root.join("css/site.css"), "body { color: teal }\n").unwrap();
    fs::write(
        static_root.join("app.0123456789ab.css"),
        "p { margin: 0 }\n",
    )
    .unwrap();

    let base = consecutive_ports();
    let (http, https) = (free_port(), free_port());
    let out = s.scratch.join("out");
    let mut args = s.test_args(http, https);
    // letsencrypt, the default: certbot's paths and the ACME webroot.
    let acme = s.scratch.join("acme");
    fs::create_dir_all(acme.join(".well-known/acme-challenge")).unwrap();
    fs::write(acme.join(".well-known/acme-challenge/tok3n"), "proof\n").unwrap();
    args.extend(tls_args("letsencrypt", &certs));
    args.extend(["--acme-webroot".to_owned(), acme.display().to_string()]);
    args.extend(
        [
            "--listen-address",
            "127.0.0.1",
            "--base-port",
            &base.to_string(),
            "--rate-limit",
            "1000r/s",
        ]
        .map(String::from),
    );
    s.deploy(&out, &args);

    let instances: Vec<Running> = [base, base + 1]
        .iter()
        .map(|port| {
            let mut cmd = Command::new(&exe);
            cmd.env("HOST", "127.0.0.1")
                .env("PORT", port.to_string())
                .env_remove("LISTEN_FDS");
            let r = Running::start(cmd);
            r.wait_for_line("listening on http://", Duration::from_secs(10));
            r
        })
        .collect();
    let mut nginx_cmd = s.nginx(&out);
    nginx_cmd.args(["-g", "daemon off;"]);
    let _nginx = Running::start(nginx_cmd);
    let client = Https {
        curl: tool("curl", "curl"),
        ca: certs.ca.clone(),
        port: https,
    };
    eventually(Duration::from_secs(10), || {
        (client.get("/healthz").0 == 200).then_some(())
    })
    .expect("nginx answers over TLS within 10 s");

    // Dynamic requests reach both instances.
    drain(&instances[0]);
    drain(&instances[1]);
    for _ in 0..10 {
        let (status, headers, body) = client.get("/");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("shop is running"));
        assert_eq!(
            headers_named(&headers, "x-content-type-options"),
            ["nosniff"]
        );
        assert_eq!(
            headers_named(&headers, "strict-transport-security"),
            ["max-age=63072000; includeSubDomains"]
        );
    }
    let served: Vec<usize> = instances
        .iter()
        .map(|r| {
            drain(r)
                .iter()
                .filter(|l| l.contains("\"GET / HTTP/1.1\" 200"))
                .count()
        })
        .collect();
    assert!(
        served[0] > 0 && served[1] > 0 && served[0] + served[1] == 10,
        "{served:?}"
    );

    // Static files come from nginx, with one Cache-Control header, long
    // only for a content-hashed name; the app never sees them.
    let (status, headers, body) = client.get("/static/css/site.css");
    assert_eq!((status, body.as_str()), (200, "body { color: teal }\n"));
    assert_eq!(headers_named(&headers, "cache-control"), ["no-cache"]);
    assert_eq!(
        headers_named(&headers, "x-frame-options"),
        ["DENY"],
        "security headers kept"
    );
    let (status, headers, _) = client.get("/static/app.0123456789ab.css");
    assert_eq!(status, 200);
    assert_eq!(
        headers_named(&headers, "cache-control"),
        ["public, max-age=31536000, immutable"]
    );
    assert_eq!(client.get("/static/missing.css").0, 404);
    assert_eq!(client.get("/.env").0, 403);
    for r in &instances {
        let lines = drain(r);
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("/static/") && !l.contains(".env")),
            "{lines:?}"
        );
    }

    // HTTP redirects to HTTPS with 308; an unknown Host gets no answer (444).
    let http_addr = format!("127.0.0.1:{http}");
    let redirect = get(&http_addr, "/some/page?x=1").unwrap();
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://localhost:{https}/some/page?x=1").as_str())
    );
    // The ACME challenge stays on HTTP, for certbot's webroot renewals.
    let challenge = get(&http_addr, "/.well-known/acme-challenge/tok3n").unwrap();
    assert_eq!(
        (challenge.status, challenge.text().as_str()),
        (200, "proof\n")
    );
    let unknown = request(
        &http_addr,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(unknown.is_err(), "unknown Host answered: {unknown:?}");

    // sslyze: Mozilla's intermediate profile.
    let sslyze = run(Command::new(venv_tool("sslyze"))
        .arg(format!("--certinfo_ca_file={}", certs.ca.display()))
        .arg("--mozilla_config=intermediate")
        .arg(format!("localhost:{https}{{127.0.0.1}}")));
    let report = String::from_utf8_lossy(&sslyze.stdout);
    assert!(
        sslyze.status.success() && report.contains(&format!("localhost:{https}: OK - Compliant")),
        "sslyze:\n{report}{}",
        String::from_utf8_lossy(&sslyze.stderr)
    );

    // Kill one instance under a continuous client: no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        let client = Https {
            ca: certs.ca.clone(),
            ..client
        };
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) && statuses.len() < 400 {
                statuses.push(client.get("/").0);
            }
            statuses
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    instances[0].signal(libc::SIGKILL);
    drain(&instances[1]);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let statuses = loader.join().unwrap();
    assert!(
        statuses.len() >= 10,
        "only {} requests were made",
        statuses.len()
    );
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let after = drain(&instances[1])
        .iter()
        .filter(|l| l.contains("\"GET / HTTP/1.1\" 200"))
        .count();
    assert!(
        after > 0,
        "the surviving instance served nothing after the kill"
    );
}

/// True when a TCP connection from this (root) namespace succeeds.
fn connects(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[test]
#[allow(clippy::print_stderr)]
fn three_machines_in_network_namespaces() {
    let s = site("tri");
    let exe = build_project(&s.project, "tri");
    let (web_ip, app_ip, db_ip) = ("10.231.77.10", "10.231.77.20", "10.231.77.30");
    let mut net = Netns::new();
    let web = net.add_machine("web", web_ip);
    let app = net.add_machine("app", app_ip);
    let db = net.add_machine("db", db_ip);
    net.connect_root("10.231.77.1");

    let out = s.scratch.join("out");
    let mut args = s.test_args(80, 443);
    args.extend(
        [
            "--tls",
            "off",
            "--web",
            web_ip,
            "--app",
            app_ip,
            "--db",
            db_ip,
            "--instances",
            "2",
        ]
        .map(String::from),
    );
    s.deploy(&out, &args);

    let start_in = |ns: &str, host: &str, port: u16| {
        let mut cmd = net.command(ns, &exe);
        cmd.env("HOST", host)
            .env("PORT", port.to_string())
            .env_remove("LISTEN_FDS");
        let r = Running::start(cmd);
        r.wait_for_line("listening on http://", Duration::from_secs(10));
        r
    };
    let instances = [start_in(&app, app_ip, 8001), start_in(&app, app_ip, 8002)];
    // A stand-in for PostgreSQL: anything listening on 5432.
    let _db_listener = start_in(&db, db_ip, 5432);
    let mut nginx_cmd = net.command(&web, tool("nginx", "nginx"));
    fs::copy("/etc/nginx/mime.types", out.join("web-1/nginx/mime.types")).unwrap();
    nginx_cmd
        .arg("-e")
        .arg(s.scratch.join("logs/early.log"))
        .arg("-c")
        .arg(out.join("web-1/nginx/nginx.conf"))
        .args(["-g", "daemon off;"]);
    let _nginx = Running::start(nginx_cmd);

    let web_addr = format!("{web_ip}:80");
    let through_web = || {
        eventually(Duration::from_secs(10), || {
            get(&web_addr, "/healthz").ok().filter(|r| r.status == 200)
        })
    };
    through_web().expect("the app answers through web");
    // Without a firewall the app port is reachable from anywhere: the
    // refusal below is the ruleset's doing, not the network's.
    assert!(
        connects(&format!("{app_ip}:8001")),
        "root reaches app before the firewall"
    );

    let can_filter = net.exec(&app, &["nft", "list", "ruleset"]).status.success();
    if !can_filter {
        eprintln!(
            "NOTE: this kernel refuses nftables inside a network namespace; \
             the firewall half of three_machines_in_network_namespaces did not run"
        );
        return;
    }
    for (ns, host) in [(&web, "web-1"), (&app, "app-1"), (&db, "db-1")] {
        let rules = out.join(format!("{host}/nftables/tri.nft"));
        net.exec_ok(ns, &["nft", "-f", rules.to_str().unwrap()]);
        // Idempotent: loading again replaces the table.
        net.exec_ok(ns, &["nft", "-f", rules.to_str().unwrap()]);
    }

    // anyone -> web -> app still works, and the app sees web as the peer.
    drain(&instances[0]);
    drain(&instances[1]);
    for _ in 0..4 {
        assert_eq!(
            through_web()
                .expect("through web after the firewall")
                .status,
            200
        );
    }
    let lines: Vec<String> = instances.iter().flat_map(drain).collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{web_ip}:"))),
        "{lines:?}"
    );
    // root -> app directly: dropped.
    assert!(
        !connects(&format!("{app_ip}:8001")),
        "root reached the app port directly"
    );
    assert!(
        !connects(&format!("{app_ip}:8002")),
        "root reached the app port directly"
    );
    // app -> db allowed; web -> db and root -> db dropped.
    let tcp_from = |ns: &str| {
        net.exec(
            ns,
            &[
                "timeout",
                "3",
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/{db_ip}/5432"),
            ],
        )
        .status
        .success()
    };
    assert!(tcp_from(&app), "app cannot reach db");
    assert!(!tcp_from(&web), "web reached db");
    assert!(!connects(&format!("{db_ip}:5432")), "root reached db");
}

/// Writes `Cargo.toml` with `from` replaced by `to` (which must be there).
fn edit_manifest(project: &Path, edits: &[(&str, &str)]) {
    let path = project.join("Cargo.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in Cargo.toml");
        text = text.replace(from, to);
    }
    fs::write(path, text).unwrap();
}

#[test]
fn all_bad_settings_are_reported_at_once_and_nothing_is_written() {
    let s = site("badsite");
    edit_manifest(
        &s.project,
        &[
            (
                r#""www.example.com"]"#,
                r#""evil.com; include /etc/passwd"]"#,
            ),
            (r#"user = "badsite""#, r#"user = "ro{ot""#),
            (r#"prefix = "/opt/badsite""#, r#"prefix = "opt/badsite""#),
            ("base-port = 8001", "base-port = 70000"),
            (
                r#"proxy-read-timeout = "60s""#,
                r#"proxy-read-timeout = "60s\n}""#,
            ),
            (
                r#"env-file = "/etc/badsite/env""#,
                r#"env-file = "/etc/$USER/env""#,
            ),
        ],
    );
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("6 invalid deploy settings; nothing was written")
                .and(predicate::str::contains(
                    "`domains[1]` = `evil.com; include /etc/passwd`: `;` is not allowed",
                ))
                .and(predicate::str::contains(
                    "`user` = `ro{ot`: `{` is not allowed",
                ))
                .and(predicate::str::contains(
                    "`prefix` = `opt/badsite`: must be an absolute path",
                ))
                .and(predicate::str::contains("`base-port` = `70000`"))
                .and(predicate::str::contains(
                    "`proxy-read-timeout` = `60s\\n}`: a newline is not allowed",
                ))
                .and(predicate::str::contains(
                    "`env-file` = `/etc/$USER/env`: `$` is not allowed",
                ))
                .and(predicate::str::contains(
                    "help: fix them in [package.metadata.manage.deploy]",
                )),
        );
    assert!(!s.project.join("deploy").exists());
}

#[test]
fn bad_flags_are_refused_and_existing_files_stay_as_they_were() {
    let s = site("keepsite");
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .success();
    let out = s.project.join("deploy");
    let before: Vec<(String, Vec<u8>)> = tree(&out)
        .into_iter()
        .filter(|p| !p.ends_with('/'))
        .map(|p| (p.clone(), fs::read(out.join(&p)).unwrap()))
        .collect();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--domain", "example.com\""],
            "`domains[0]` = `example.com\\\"`: `\"` is not allowed",
        ),
        (&["--domain", "exa mple.com"], "a space is not allowed"),
        (
            &["--domain", "a.example,A.example"],
            "`domains[1]` = `A.example`: is listed twice",
        ),
        (&["--domain=-bad.example"], "cannot start or end with `-`"),
        (
            &["--domain", "ex_ample.com"],
            "`_` is not allowed in a domain name",
        ),
        (
            &["--tls", "maybe"],
            "`tls` = `maybe`: expected `letsencrypt`, `custom` or `off`",
        ),
        (&["--tls", "custom"], "`tls-certificate` is required"),
        (
            &[
                "--web",
                "10.0.0.1",
                "--app",
                "10.0.0.2",
                "--db",
                "10.0.0.999",
            ],
            "`topology.db` = `10.0.0.999`: not an IP address",
        ),
        (
            &["--web", "10.0.0.1", "--app", "10.0.0.1", "--db", "10.0.0.3"],
            "an address of its own",
        ),
        (
            &["--user", "Root"],
            "`user` = `Root`: `R` is not allowed in a unix user name",
        ),
        (
            &["--static-root", "/srv/static#x"],
            "`static-root` = `/srv/static#x`: `#` is not allowed",
        ),
        (&["--binary", "/opt/../bin/sh"], "must be a normalised path"),
        (
            &["--client-max-body-size", "1{"],
            "`client-max-body-size` = `1{`: `{` is not allowed",
        ),
        (
            &["--proxy-connect-timeout", "5 years"],
            "`proxy-connect-timeout`",
        ),
        (
            &["--nginx-version", "1.22;"],
            "`nginx-version` = `1.22;`: `;` is not allowed",
        ),
        (&["--instances", "0"], "`instances` = `0`: expected 1 to 64"),
        (
            &["--https-port", "8002"],
            "`https-port` = `8002`: collides with an app instance's port",
        ),
        (&["--app-egress", "10.0.0.0/40"], "`app-egress[0]`"),
    ];
    for (args, message) in cases {
        manage()
            .current_dir(&s.project)
            .arg("deploy-config")
            .arg("--force")
            .args(*args)
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains(*message)
                    .and(predicate::str::contains("nothing was written")),
            );
        for (path, contents) in &before {
            assert_eq!(
                &fs::read(out.join(path)).unwrap(),
                contents,
                "{path} changed by {args:?}"
            );
        }
        assert_eq!(
            tree(&out).iter().filter(|p| !p.ends_with('/')).count(),
            before.len()
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_name_the_setting() {
    let s = site("typosite");
    edit_manifest(&s.project, &[("instances = 2", "instances = \"two\"")]);
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("invalid setting `instances`")
                .and(predicate::str::contains("invalid type")),
        );
    edit_manifest(
        &s.project,
        &[("instances = \"two\"", "instances = 2\nhtsts = true")],
    );
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field `htsts`"));
    assert!(!s.project.join("deploy").exists());
}

#[test]
fn check_force_and_only() {
    let s = site("cisite");
    let out = s.project.join("deploy");
    // --check on nothing: everything is missing.
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("+++"))
        .stderr(predicate::str::contains("11 of 11 files differ"));
    assert!(!out.exists(), "--check wrote something");

    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .success();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .success()
        .stderr(predicate::str::contains("up to date"));

    // A hand edit: --check shows it, a plain run refuses, --force restores.
    let conf = out.join("nginx/nginx.conf");
    let generated = fs::read_to_string(&conf).unwrap();
    let edited = generated.replace("worker_connections 4096;", "worker_connections 8;");
    fs::write(&conf, &edited).unwrap();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("-    worker_connections 8;")
                .and(predicate::str::contains("+    worker_connections 4096;")),
        )
        .stderr(predicate::str::contains("1 of 11 files differ"));
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nginx.conf").and(predicate::str::contains("`--force`")));
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited);
    // A changed setting through a flag is a difference too.
    manage()
        .current_dir(&s.project)
        .args([
            "deploy-config",
            "--check",
            "--instances",
            "3",
            "--only",
            "systemd",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "+Wants=cisite@8003.socket cisite@8003.service",
        ));
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--force"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&conf).unwrap(), generated);
    let leftovers: Vec<String> = tree(&out)
        .into_iter()
        .filter(|p| p.contains(".manage-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A file the settings no longer produce is reported by --check and
    // warned about by a run, never silently left to be deployed.
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--force"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "https.conf` is no longer generated",
        ));
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--check"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "only on disk, no longer generated",
        ))
        .stderr(predicate::str::contains("https.conf` (not generated)"));
    fs::remove_file(out.join("nginx/cisite/sites/https.conf")).unwrap();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--check"])
        .assert()
        .success();

    // --only writes only the chosen kinds.
    let only = s.scratch.join("only");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--only", "systemd,readme", "--out"])
        .arg(&only)
        .assert()
        .success();
    assert_eq!(
        tree(&only),
        [
            "README.md",
            "systemd/",
            "systemd/cisite.target",
            "systemd/cisite@.service",
            "systemd/cisite@.socket"
        ]
    );
}

#[test]
fn tls_off_is_warned_and_serves_plain_http() {
    let s = site("plainsite");
    let out = s.scratch.join("out");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: TLS is off"));
    assert!(!out.join("nginx/plainsite/sites/https.conf").exists());
    let http = fs::read_to_string(out.join("nginx/plainsite/sites/http.conf")).unwrap();
    assert!(http.contains("proxy.conf") && !http.contains("return 308"));
    let headers =
        fs::read_to_string(out.join("nginx/plainsite/snippets/security-headers.conf")).unwrap();
    assert!(
        !headers.contains("Strict-Transport-Security"),
        "no HSTS over plain HTTP"
    );
}

#[test]
fn version_gated_syntax_follows_the_target_nginx_and_openssl() {
    let s = site("newsite");
    let out = s.scratch.join("out");
    s.deploy(
        &out,
        &["--nginx-version", "1.27.3", "--openssl-version", "3.5"].map(String::from),
    );
    let https = fs::read_to_string(out.join("nginx/newsite/sites/https.conf")).unwrap();
    assert!(
        https.contains("    http2 on;")
            && !https.contains(" http2;")
            && !https.contains("ssl http2")
    );
    let conf = fs::read_to_string(out.join("nginx/nginx.conf")).unwrap();
    assert!(conf.contains("ssl_ecdh_curve ?X25519MLKEM768:X25519:prime256v1:secp384r1;"));
    assert!(!conf.contains("ssl_session_tickets off"));
    // nginx here may be older than the target, but gixy reads any version.
    fs::copy("/etc/nginx/mime.types", out.join("nginx/mime.types")).unwrap();
    let gixy = run(Command::new(venv_tool("gixy")).arg(out.join("nginx/nginx.conf")));
    assert!(
        gixy.status.success(),
        "{}",
        String::from_utf8_lossy(&gixy.stdout)
    );

    // Without the brotli modules the config must not load or use them.
    let plain = s.scratch.join("plain");
    let mut args = s.test_args(18080, 18443);
    args.extend(["--brotli", "false", "--tls", "off"].map(String::from));
    s.deploy(&plain, &args);
    let conf = fs::read_to_string(plain.join("nginx/nginx.conf")).unwrap();
    assert!(!conf.contains("brotli"), "{conf}");
    run_ok(s.nginx(&plain).arg("-t"));
}
