//! `manage deploy-config` proven by the real tools: nginx -t, gixy,
//! systemd-analyze, shellcheck and nft over every layout and TLS mode;
//! nginx in front of two real instances on loopback (`loopback`, sslyze
//! included); and the three-machine layout in network namespaces behind
//! its own firewall (`namespaces`).

mod loopback;
mod namespaces;

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

/// True when a TCP connection from this (root) namespace succeeds.
fn connects(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}
