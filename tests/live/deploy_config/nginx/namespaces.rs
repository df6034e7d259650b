//! The three-machine layout (web, app, db) in network namespaces, each
//! behind its own generated firewall.

use super::*;

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
