//! nginx in front of two real instances of the generated app on loopback:
//! TLS (sslyze), headers, failover, static files.

use super::*;

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
