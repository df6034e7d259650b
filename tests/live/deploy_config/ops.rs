//! deploy-config for the first month of operation (#15), with a real nginx
//! in front of the built app: strict limits on the paths that need them
//! and a generous flood guard elsewhere, the client address through
//! trusted proxies, 429s logged as warnings.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::support::deploy::site;
use crate::support::{build_project, eventually, free_port, request, Running};

#[test]
fn path_limits_real_ip_and_quiet_429s_with_a_real_nginx() {
    let s = site("opsite");
    let exe = build_project(&s.project, "opsite");
    let (app_port, http) = (free_port(), free_port());
    let mut toml = fs::read_to_string(s.project.join("Cargo.toml")).unwrap();
    toml = toml.replace(
        "# rate-limit-paths = { \"/login\" = { rate = \"10r/m\", burst = 5 } }",
        "rate-limit-paths = { \"/login\" = { rate = \"1r/m\", burst = 2 } }",
    );
    toml = toml.replace(
        "# real-ip-from = [\"203.0.113.0/24\"]",
        "real-ip-from = [\"127.0.0.1/32\"]",
    );
    fs::write(s.project.join("Cargo.toml"), toml).unwrap();
    let out = s.scratch.join("out");
    let mut args = s.test_args(http, free_port());
    args.extend(
        [
            "--tls",
            "off",
            "--instances",
            "1",
            "--base-port",
            &app_port.to_string(),
            "--listen-address",
            "127.0.0.1",
        ]
        .map(String::from),
    );
    s.deploy(&out, &args);
    let conf = fs::read_to_string(out.join("nginx/nginx.conf")).unwrap();
    assert!(conf.contains("limit_req_log_level warn;"), "{conf}");

    let mut app = Command::new(&exe);
    // Its SQLite file goes into the project, not into manage's checkout.
    app.current_dir(&s.project)
        .env("HOST", "127.0.0.1")
        .env("PORT", app_port.to_string())
        .env_remove("LISTEN_FDS");
    let app = Running::start(app);
    app.wait_for_line("listening on http://", Duration::from_secs(10));
    let mut nginx = s.nginx(&out);
    nginx.args(["-g", "daemon off;"]);
    let _nginx = Running::start(nginx);
    let addr = format!("127.0.0.1:{http}");
    eventually(Duration::from_secs(10), || {
        (status(&addr, "GET", "/healthz", "") == 200).then_some(())
    })
    .expect("nginx answers");

    // /login: 1 a minute plus a burst of 2, then 429 (the app's own answer
    // to POST / is 405, which is not nginx's doing).
    let login: Vec<u16> = (0..6)
        .map(|_| status(&addr, "POST", "/login", ""))
        .collect();
    assert_eq!(login.iter().filter(|s| **s == 429).count(), 3, "{login:?}");
    assert!(login[..3].iter().all(|s| *s != 429), "{login:?}");
    // Everything else keeps its generous guard: 40 requests pass.
    for _ in 0..40 {
        assert_eq!(status(&addr, "GET", "/", ""), 200);
    }
    // Another client behind the trusted proxy (127.0.0.1) has a limit of
    // its own: nginx takes its address from X-Forwarded-For.
    let other = status(&addr, "POST", "/login", "X-Forwarded-For: 198.51.100.7\r\n");
    assert_ne!(
        other, 429,
        "the client behind the proxy shares the proxy's limit"
    );
    let log = fs::read_to_string(s.scratch.join("logs/opsite.access.log")).unwrap();
    assert!(
        log.lines().any(|l| l.starts_with("198.51.100.7 ")),
        "the access log names the proxy, not the client:\n{log}"
    );
    // Rejections are logged as warnings, not errors.
    let errors = fs::read_to_string(s.scratch.join("logs/error.log")).unwrap();
    let limited: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("limiting requests"))
        .collect();
    assert!(!limited.is_empty(), "{errors}");
    assert!(limited.iter().all(|l| l.contains("[warn]")), "{limited:?}");
}

fn status(addr: &str, method: &str, path: &str, extra: &str) -> u16 {
    request(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .map(|r| r.status)
    .unwrap_or(0)
}
