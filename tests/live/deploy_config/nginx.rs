//! `manage deploy-config` proven by the real tools: nginx -t, gixy,
//! systemd-analyze, shellcheck and nft over every layout and TLS mode;
//! nginx in front of two real instances on loopback (sslyze included); and
//! the three-machine layout in network namespaces behind its own firewall.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::deploy::{
    instance_units, run, run_ok, site, tool, venv_tool, Certs, Netns, Site,
};
use crate::support::postgres::Postgres;
use crate::support::{
    build_project, eventually, free_port, get, post_form, request, tree, Running,
};

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
            let units = tempfile::tempdir_in(&s.scratch).unwrap();
            let name = &s.name;
            let files = instance_units(&host, units.path(), name, &[8001, 8002]);
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
            let migrate = run_ok(
                Command::new(&analyze)
                    .args(["security", "--offline=true", "--no-pager"])
                    .arg(host.join(format!("systemd/{name}-migrate.service"))),
            );
            let level = exposure(&String::from_utf8_lossy(&migrate.stdout));
            assert!(
                level <= 2.0,
                "exposure {level} > 2.0 for {name}-migrate.service on {what}"
            );
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
                assert!(
                    socket.contains("IPAddressAllow=10.0.0.10 10.0.0.21\n"),
                    "{socket}"
                );
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
            // Its SQLite file goes into the project, not manage's checkout.
            cmd.current_dir(&s.project)
                .env("HOST", "127.0.0.1")
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
    // The log line is printed before the response is sent, but it reaches
    // us through a reader thread: give it a moment.
    let mut served = [0usize; 2];
    eventually(Duration::from_secs(5), || {
        for (count, r) in served.iter_mut().zip(&instances) {
            *count += drain(r)
                .iter()
                .filter(|l| l.contains("\"GET / HTTP/1.1\" 200"))
                .count();
        }
        (served[0] + served[1] >= 10).then_some(())
    });
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
    // Dot files in static-root are never served (the prefix location
    // skips the server's regex, so it has its own).
    fs::write(static_root.join(".env"), "SECRET_KEY=x\n").unwrap();
    fs::create_dir_all(static_root.join(".git")).unwrap();
    fs::write(static_root.join(".git/config"), "[core]\n").unwrap();
    assert_eq!(client.get("/static/.env").0, 403);
    assert_eq!(client.get("/static/.git/config").0, 403);
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

    // PostgreSQL in the db namespace with the generated postgresql.conf and
    // pg_hba.conf (hostssl only), TLS with a certificate of the test's own.
    let certs = s.certs();
    let pg = Postgres::start_in(
        vec![
            tool("ip", "iproute2").display().to_string(),
            "netns".into(),
            "exec".into(),
            db.clone(),
        ],
        db_ip,
        5432,
        &fs::read_to_string(out.join("db-1/postgres/tri.conf")).unwrap(),
        Some(&fs::read_to_string(out.join("db-1/postgres/pg_hba.conf")).unwrap()),
        Some((&certs.chain, &certs.key)),
    );
    // The role and database install.sh creates, with its password.
    let password = "a-password-only-in-a-credential";
    pg.create_app_database("tri", password);
    // What the units give the app: DATABASE_URL without a password, the
    // password as the systemd credential `db-password`.
    let unit = fs::read_to_string(out.join("app-1/systemd/tri@.service")).unwrap();
    let url = unit
        .lines()
        .find_map(|l| l.strip_prefix("Environment=DATABASE_URL="))
        .expect("the unit sets DATABASE_URL")
        .to_owned();
    assert!(
        !url.contains(password) && url.ends_with("?sslmode=require"),
        "{url}"
    );
    let credentials = s.scratch.join("credentials");
    fs::create_dir_all(&credentials).unwrap();
    fs::write(credentials.join("db-password"), password).unwrap();
    let app_cmd = |url: &str| {
        let mut cmd = net.command(&app, &exe);
        cmd.current_dir(&s.project)
            .env("DATABASE_URL", url)
            .env("CREDENTIALS_DIRECTORY", &credentials);
        cmd
    };
    // Without TLS, pg_hba.conf has no line for the app.
    let plain = run(app_cmd(&url.replace("sslmode=require", "sslmode=disable")).arg("migrate"));
    assert!(
        !plain.status.success() && String::from_utf8_lossy(&plain.stderr).contains("pg_hba.conf"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    // Two instances' migrations started together: exactly one applies.
    let racing: Vec<_> = (0..2)
        .map(|_| {
            app_cmd(&url)
                .arg("migrate")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let said: Vec<String> = racing
        .into_iter()
        .map(|child| {
            let o = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&o.stderr).into_owned();
            assert!(o.status.success(), "{text}");
            text
        })
        .collect();
    assert_eq!(
        said.iter().filter(|t| t.contains("applied ")).count(),
        1,
        "{said:?}"
    );
    assert_eq!(
        pg.psql("tri", "SELECT count(*) FROM _sqlx_migrations"),
        "1\n"
    );

    let start_in = |host: &str, port: u16| {
        let mut cmd = app_cmd(&url);
        cmd.env("HOST", host)
            .env("PORT", port.to_string())
            .env_remove("LISTEN_FDS");
        let r = Running::start(cmd);
        r.wait_for_line("listening on http://", Duration::from_secs(10));
        r
    };
    let instances = [start_in(app_ip, 8001), start_in(app_ip, 8002)];
    // Stand-ins for sshd on web and app: anything listening on port 22.
    let sshd_in = |ns: &str| {
        let mut cmd = net.command(ns, "python3");
        cmd.args([
            "-c",
            "import socket, sys, time\n\
             s = socket.socket(socket.AF_INET6)\n\
             s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             s.bind(('::', 22)); s.listen()\n\
             print('listening on port 22', file=sys.stderr, flush=True)\n\
             time.sleep(600)",
        ]);
        let r = Running::start(cmd);
        r.wait_for_line("listening on port 22", Duration::from_secs(10));
        r
    };
    let _sshd = [sshd_in(&web), sshd_in(&app)];
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
    // A POST through nginx writes a row (in PostgreSQL) that a GET reads back.
    let note_round_trip = |text: &str| {
        let form = format!("body={text}");
        let posted = post_form(&web_addr, "/notes", &form).unwrap();
        assert_eq!(posted.status, 303, "{}", posted.text());
        let page = get(&web_addr, "/notes").unwrap();
        assert!(
            page.text().contains(&format!("<li>{text}</li>")),
            "{}",
            page.text()
        );
        assert_eq!(
            pg.psql(
                "tri",
                &format!("SELECT count(*) FROM notes WHERE body = '{text}'")
            ),
            "1\n"
        );
    };
    note_round_trip("before-the-firewall");
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
    let mut lines: Vec<String> = Vec::new();
    let from_web = eventually(Duration::from_secs(5), || {
        lines.extend(instances.iter().flat_map(drain));
        lines
            .iter()
            .any(|l| l.contains(&format!(" {web_ip}:")))
            .then_some(())
    });
    assert!(from_web.is_some(), "{lines:?}");
    note_round_trip("through-the-firewall");
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

    // SSH (#15): with no admin-networks set, the app machine takes it only
    // from web, its jump host; web takes it from anywhere (warned).
    let ssh_from_web = || {
        net.exec(
            &web,
            &[
                "timeout",
                "3",
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/{app_ip}/22"),
            ],
        )
        .status
        .success()
    };
    assert!(ssh_from_web(), "web cannot reach app's ssh");
    assert!(!connects(&format!("{app_ip}:22")), "root reached app's ssh");
    assert!(
        connects(&format!("{web_ip}:22")),
        "root cannot reach web's ssh"
    );
    // With admin-networks (here: the root namespace's address), every
    // machine takes SSH from there and from nowhere else, web included.
    let admin_out = s.scratch.join("out-admin");
    let mut admin_args = args.clone();
    admin_args.extend(["--admin-network".to_owned(), "10.231.77.1/32".to_owned()]);
    s.deploy(&admin_out, &admin_args);
    for (ns, host) in [(&web, "web-1"), (&app, "app-1")] {
        let rules = admin_out.join(format!("{host}/nftables/tri.nft"));
        net.exec_ok(ns, &["nft", "-f", rules.to_str().unwrap()]);
    }
    assert!(
        connects(&format!("{app_ip}:22")),
        "root, the admin network, cannot reach app's ssh"
    );
    assert!(
        !ssh_from_web(),
        "web reached app's ssh outside the admin networks"
    );
    assert!(
        connects(&format!("{web_ip}:22")),
        "root cannot reach web's ssh"
    );

    // The default per-client rate limit (30r/s, burst 60): a rapid burst
    // past it is answered 429 by nginx.
    let statuses: Vec<u16> = (0..150)
        .map(|_| get(&web_addr, "/healthz").map(|r| r.status).unwrap_or(0))
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 60,
        "{statuses:?}"
    );
}
