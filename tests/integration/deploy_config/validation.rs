//! `manage deploy-config` against hostile or careless settings (#9, items
//! 7 to 9): system paths, values the validators accept but nginx, systemd
//! or nft would not, and weak values that pass silently.

use std::fs;
use std::path::Path;

use assert_cmd::prelude::*;

use crate::support::deploy::{run_ok, site, Site};
use crate::support::manage;

/// Runs deploy-config with `args`, expecting a refusal; returns stderr.
fn refused(s: &Site, args: &[&str]) -> String {
    let out = s.scratch.join("refused");
    let assert = manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--out"])
        .arg(&out)
        .args(args)
        .assert()
        .code(1);
    assert!(!out.exists(), "a refused run wrote {}", out.display());
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

/// Runs deploy-config with `args`, expecting success; returns stderr.
pub(super) fn accepted(s: &Site, out: &Path, args: &[&str]) -> String {
    let assert = manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--force", "--out"])
        .arg(out)
        .args(args)
        .assert();
    let output = assert.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?} refused:\n{stderr}");
    stderr
}

const PATH_FLAGS: &[&str] = &[
    "prefix",
    "binary",
    "env-file",
    "static-root",
    "acme-webroot",
    "letsencrypt-dir",
    "nginx-conf-dir",
    "nginx-pid",
    "nginx-log-dir",
    "nginx-temp-dir",
];

#[test]
fn system_paths_are_refused_for_every_path_setting() {
    let s = site("syspaths");
    for value in [
        "/",
        "/etc",
        "/usr",
        "/var",
        "/tmp",
        "/root",
        "/home",
        "/etc/passwd",
        "/proc/self",
        "/dev/zero",
    ] {
        let mut args = Vec::new();
        for flag in PATH_FLAGS {
            args.push(format!("--{flag}"));
            args.push(value.to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = refused(&s, &args);
        for flag in PATH_FLAGS {
            assert!(
                stderr.contains(&format!("`{flag}` = `{value}`")),
                "`{flag}` = `{value}` not refused:\n{stderr}"
            );
        }
    }
    // Custom certificates too, and the well-known files by name.
    let stderr = refused(
        &s,
        &[
            "--tls",
            "custom",
            "--tls-certificate",
            "/etc/shadow",
            "--tls-certificate-key",
            "/etc",
        ],
    );
    assert!(
        stderr.contains("`tls-certificate` = `/etc/shadow`: `/etc/shadow` is a system file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`tls-certificate-key` = `/etc`: is a system directory"),
        "{stderr}"
    );
    // The three: the static root that would serve /etc, the prefix
    // that would lose /tmp's sticky bit, the env file that is /etc/passwd.
    for (flag, value) in [
        ("static-root", "/etc"),
        ("prefix", "/tmp"),
        ("env-file", "/etc/passwd"),
    ] {
        let stderr = refused(&s, &[&format!("--{flag}"), value]);
        assert!(
            stderr.contains(&format!("`{flag}` = `{value}`")),
            "{stderr}"
        );
    }
    // A directory of the system as the env file's directory, and a binary
    // that would replace a packaged program.
    let stderr = refused(
        &s,
        &[
            "--env-file",
            "/etc/syspaths-env",
            "--binary",
            "/usr/bin/syspaths",
        ],
    );
    assert!(
        stderr.contains("`env-file` = `/etc/syspaths-env`: must be in a directory of its own"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "`binary` = `/usr/bin/syspaths`: `/usr/bin` holds the system's packaged programs"
        ),
        "{stderr}"
    );
}

#[test]
fn paths_inside_a_directory_nginx_serves_are_refused() {
    let s = site("nesting");
    let stderr = refused(
        &s,
        &[
            "--static-root",
            "/srv/nesting",
            "--prefix",
            "/srv/nesting",
            "--env-file",
            "/srv/nesting/secrets/env",
            "--nginx-log-dir",
            "/srv/nesting/logs",
        ],
    );
    for setting in ["prefix", "env-file", "nginx-log-dir"] {
        assert!(
            stderr.contains(&format!("`{setting}` = `/srv/nesting"))
                && stderr.contains(
                    "is inside `static-root` (`/srv/nesting`), which nginx serves to anyone"
                ),
            "{setting}:\n{stderr}"
        );
    }
    // certbot's keys below the ACME webroot would be served too.
    let stderr = refused(
        &s,
        &[
            "--acme-webroot",
            "/var/www/acme",
            "--letsencrypt-dir",
            "/var/www/acme/live",
        ],
    );
    assert!(
        stderr.contains("`letsencrypt-dir` = `/var/www/acme/live`: is inside `acme-webroot`"),
        "{stderr}"
    );
    // Nesting the other way round is the default layout: prefix/static.
    accepted(
        &s,
        &s.scratch.join("ok"),
        &[
            "--prefix",
            "/srv/nesting",
            "--static-root",
            "/srv/nesting/static",
        ],
    );
}

#[test]
fn values_nginx_or_systemd_would_reject_are_refused() {
    let s = site("rejects");
    for (args, message) in [
        (
            &["--rate-limit", "0r/s"][..],
            "`rate-limit` = `0r/s`: expected at least 1 request",
        ),
        (
            &["--rate-limit-burst", "0"],
            "`rate-limit-burst` = `0`: expected 1 to 100000",
        ),
        (
            &["--app-egress", "10.0.0.1/08"],
            "`app-egress[0]` = `10.0.0.1/08`: the prefix length must be 0 to 32",
        ),
        (
            &["--domain", "example.com,Example.com."],
            "`domains[1]` = `Example.com.`: is listed twice",
        ),
        (
            &["--prefix", "/home/deploy/rejects"],
            "`prefix` = `/home/deploy/rejects`: the service runs with ProtectHome=yes",
        ),
        (&["--user", &"u".repeat(32)], "has at most 31 characters"),
    ] {
        let stderr = refused(&s, args);
        assert!(stderr.contains(message), "{args:?}:\n{stderr}");
    }
}

#[test]
fn a_long_domain_gets_the_hash_bucket_size_nginx_needs() {
    let s = site("longname");
    let out = s.scratch.join("out");
    // 47 characters: one more than nginx's default bucket (64 bytes) holds.
    let long = format!("{}.example", "l".repeat(39));
    let mut args = s.test_args(18080, 18443);
    // test_args names localhost; the flag adds to the list.
    args.extend(["--tls", "off", "--domain"].map(String::from));
    args.push(long);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    accepted(&s, &out, &args);
    let conf = fs::read_to_string(out.join("nginx/nginx.conf")).unwrap();
    assert!(
        conf.contains("server_names_hash_bucket_size 128;"),
        "{conf}"
    );
    run_ok(s.nginx(&out).arg("-t"));
}

#[test]
fn weak_values_are_warned_and_never_right_ones_refused() {
    let s = site("weak");
    let topology = |web: &str, app: &str| {
        vec![
            "--web".to_owned(),
            web.to_owned(),
            "--app".to_owned(),
            app.to_owned(),
            "--db".to_owned(),
            "10.0.0.30".to_owned(),
        ]
    };
    for (args, message) in [
        (
            vec!["--user".to_owned(), "root".to_owned()],
            "`user` = `root`: the app never runs as root",
        ),
        (
            topology("0.0.0.0", "10.0.0.20"),
            "`topology.web` = `0.0.0.0`: is the unspecified address",
        ),
        (
            topology("10.0.0.10", "255.255.255.255"),
            "`topology.app[0]` = `255.255.255.255`: is the broadcast address",
        ),
        (
            topology("224.0.0.1", "10.0.0.20"),
            "`topology.web` = `224.0.0.1`: is a multicast address",
        ),
        (
            topology("127.0.0.1", "10.0.0.20"),
            "`topology.web` = `127.0.0.1`: is a loopback address",
        ),
        (
            topology("10.0.0.10", "fe80::20"),
            "`topology.app[0]` = `fe80::20`: is a link-local IPv6 address",
        ),
        // The same machine, spelt as an IPv4-mapped IPv6 address.
        (
            topology("10.0.0.10", "::ffff:10.0.0.10"),
            "`topology` = `10.0.0.10`: each machine needs an address of its own",
        ),
        (
            vec!["--proxy-read-timeout".to_owned(), "0s".to_owned()],
            "`proxy-read-timeout` = `0s`: must be more than 0",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = refused(&s, &args);
        assert!(stderr.contains(message), "{args:?}:\n{stderr}");
    }

    for entry in [
        (
            vec!["--hsts-max-age", "0"],
            "HSTS is off (`hsts-max-age = 0`)",
        ),
        (
            vec!["--hsts-max-age", "300"],
            "`hsts-max-age = 300` is under a year",
        ),
        (
            vec!["--client-max-body-size", "0"],
            "`client-max-body-size = \"0\"` turns off nginx's limit",
        ),
        (
            vec![
                "--web",
                "169.254.0.10",
                "--app",
                "10.0.0.20",
                "--db",
                "10.0.0.30",
            ],
            "`topology.web` = `169.254.0.10` is a link-local address",
        ),
        (
            vec![
                "--web",
                "203.0.113.10",
                "--app",
                "10.0.0.20",
                "--db",
                "10.0.0.30",
            ],
            "`topology.web` = `203.0.113.10` is not a private address",
        ),
        (
            vec!["--app-egress", "0.0.0.0/0"],
            "the app may connect to any address",
        ),
        (vec!["--nginx-user", "root"], "nginx workers run as root"),
        (
            vec!["--user", "www-data"],
            "the app runs as nginx's user `www-data`",
        ),
        (vec!["--user", "nobody"], "the app runs as `nobody`"),
        (vec!["--db-user", "postgres"], "is PostgreSQL's superuser"),
    ]
    .into_iter()
    .enumerate()
    {
        let (i, (args, warning)) = entry;
        let out = s.scratch.join(format!("warned-{i}"));
        let stderr = accepted(&s, &out, &args);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(warning)),
            "{args:?}:\n{stderr}"
        );
    }
}
