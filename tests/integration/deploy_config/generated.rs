//! Every value deploy-config accepts gives files the real validators
//! accept (#9, item 8): `nginx -t`, `systemd-analyze verify`, `nft -c` and
//! shellcheck, over settings generated from a fixed list of edge values per
//! setting. The generator is deterministic (a seeded SplitMix64 picks each
//! setting's starting offset), and every edge value appears in some run.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::deploy::{instance_units, run, site, tool, Certs, Site};
use crate::support::manage;

/// SplitMix64: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One setting: the flags for each of its edge values (empty: the default).
struct Edges(Vec<Vec<String>>);

fn edges(values: &[&[&str]]) -> Edges {
    Edges(
        values
            .iter()
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .collect(),
    )
}

fn flag(name: &str, values: &[&str]) -> Edges {
    Edges(
        values
            .iter()
            .map(|v| vec![format!("--{name}"), v.to_string()])
            .collect(),
    )
}

fn long_label(n: usize) -> String {
    "l".repeat(n)
}

/// The generated settings, one `Edges` per setting (ports as one, as
/// they must not collide).
fn settings() -> Vec<(&'static str, Edges)> {
    let d46 = format!("{}.example", long_label(38)); // 46 characters
    let d47 = format!("{}.example", long_label(39)); // 47: over nginx's default
    let d253 = format!(
        "{}.{}.{}.{}",
        long_label(63),
        long_label(63),
        long_label(63),
        long_label(61)
    );
    let many: Vec<String> = (0..40).map(|i| format!("n{i}.example.com")).collect();
    let many = format!("{},{d253}", many.join(","));
    let long_prefix = format!("/opt/{}", long_label(200));
    vec![
        (
            "domains",
            Edges(
                [
                    "localhost",
                    &d46,
                    &d47,
                    &d253,
                    "Example.COM,www.example.com",
                    "x1.example.",
                    "a",
                    "xn--bcher-kva.example,0-0.example,123.example",
                    &many,
                ]
                .iter()
                .map(|d| vec!["--domain".to_owned(), d.to_string()])
                .collect(),
            ),
        ),
        ("tls", flag("tls", &["off", "custom", "letsencrypt"])),
        ("hsts", flag("hsts", &["true", "false"])),
        (
            "hsts-max-age",
            flag("hsts-max-age", &["1", "63072000", "18446744073709551615"]),
        ),
        (
            "ports",
            edges(&[
                &[
                    "--instances",
                    "1",
                    "--base-port",
                    "8001",
                    "--http-port",
                    "80",
                    "--https-port",
                    "443",
                    "--ssh-port",
                    "22",
                ],
                &[
                    "--instances",
                    "2",
                    "--base-port",
                    "8001",
                    "--http-port",
                    "18080",
                    "--https-port",
                    "18443",
                    "--ssh-port",
                    "2222",
                ],
                &[
                    "--instances",
                    "64",
                    "--base-port",
                    "65472",
                    "--http-port",
                    "80",
                    "--https-port",
                    "443",
                    "--ssh-port",
                    "22",
                ],
                &[
                    "--instances",
                    "3",
                    "--base-port",
                    "1",
                    "--http-port",
                    "80",
                    "--https-port",
                    "443",
                    "--ssh-port",
                    "22",
                ],
                &[
                    "--instances",
                    "5",
                    "--base-port",
                    "30000",
                    "--http-port",
                    "65535",
                    "--https-port",
                    "1",
                    "--ssh-port",
                    "65534",
                ],
            ]),
        ),
        (
            "user",
            flag(
                "user",
                &["a", "_", "_x9", "a-b", "a-", "www-data", &"u".repeat(31)],
            ),
        ),
        (
            "prefix",
            flag(
                "prefix",
                &["/opt/gen", "/srv/a+b@c:d,e", "/x", &long_prefix],
            ),
        ),
        (
            "env-file",
            flag(
                "env-file",
                &["/etc/gen/env", "/etc/a+b/c@d:e,f", "/var/lib/gen/.env"],
            ),
        ),
        (
            "static-root",
            flag(
                "static-root",
                &["/srv/static", "/var/www/a:b", "/opt/gen-static"],
            ),
        ),
        // No flag: `static-url` of [package.metadata.manage], see below.
        (
            "static-url",
            flag("static-url", &["/static/", "/a/", "/a-b_c.d/", "/x/y/z/"]),
        ),
        (
            "acme-webroot",
            flag("acme-webroot", &["/var/www/letsencrypt", "/srv/acme"]),
        ),
        (
            "client-max-body-size",
            flag(
                "client-max-body-size",
                &["0", "1", "16m", "999999999g", "1K"],
            ),
        ),
        (
            "proxy-connect-timeout",
            flag("proxy-connect-timeout", &["1ms", "5s", "75s", "999999999h"]),
        ),
        (
            "proxy-read-timeout",
            flag("proxy-read-timeout", &["1ms", "60s", "1m", "999999999h"]),
        ),
        (
            "rate-limit",
            flag(
                "rate-limit",
                &["1r/s", "1r/m", "10r/s", "999999999r/s", "999999999r/m"],
            ),
        ),
        (
            "rate-limit-burst",
            flag("rate-limit-burst", &["1", "20", "100000"]),
        ),
        // The nginx and OpenSSL of this machine (Debian 12: 1.22, 3.0): the
        // versions only gate syntax, which must match the nginx that tests.
        (
            "nginx-version",
            flag("nginx-version", &["1.19.4", "1.22", "1.22.1", "1.25.0"]),
        ),
        (
            "openssl-version",
            flag("openssl-version", &["1.1.1", "3.0"]),
        ),
        ("brotli", flag("brotli", &["true", "false"])),
        (
            "listen",
            edges(&[
                &[],
                &["--ipv6", "false"],
                &["--listen-address", "127.0.0.1"],
                &["--listen-address", "::1"],
                &["--listen-address", "0.0.0.0"],
                &["--listen-address", "::"],
            ]),
        ),
        (
            "app-egress",
            edges(&[
                &[],
                &["--app-egress", "10.0.0.0/8"],
                &["--app-egress", "0.0.0.0/0,::/0"],
                &["--app-egress", "fd00::1,192.0.2.1/32"],
                &["--app-egress", "::ffff:10.0.0.1"],
            ]),
        ),
        (
            "topology",
            edges(&[
                &[],
                &[
                    "--web",
                    "10.0.0.10",
                    "--app",
                    "10.0.0.20",
                    "--db",
                    "10.0.0.30",
                ],
                &[
                    "--web",
                    "fd00::10",
                    "--app",
                    "fd00::20,fd00::21",
                    "--db",
                    "fd00::30",
                ],
                &[
                    "--web",
                    "10.0.0.10",
                    "--app",
                    "fd00::20,10.0.0.21",
                    "--db",
                    "fd00::30",
                ],
            ]),
        ),
        ("db-port", flag("db-port", &["5432", "1", "65535"])),
        (
            "db-names",
            edges(&[
                &[],
                &["--db-name", "_", "--db-user", "a"],
                &["--db-name", &"d".repeat(63), "--db-user", &"u".repeat(63)],
            ]),
        ),
        ("notify", flag("notify", &["true", "false"])),
        (
            "watchdog-sec",
            flag("watchdog-sec", &["10", "0", "2", "3600"]),
        ),
        (
            "recycle-after",
            edges(&[
                &[],
                &["--recycle-after", "10s"],
                &["--recycle-after", "24h"],
                &["--recycle-after", "366d"],
            ]),
        ),
        (
            "memory",
            edges(&[
                &[],
                &["--memory-high", "32M", "--memory-max", "32M"],
                &["--memory-high", "25%", "--memory-max", "100%"],
                &["--memory-max", "64G"],
                &["--memory-high", "1T"],
            ]),
        ),
    ]
}

/// The machines of a generated tree (see `deploy_live::host_dirs`).
fn host_dirs(out: &Path) -> Vec<std::path::PathBuf> {
    if out.join("install.sh").is_file() {
        return vec![out.to_path_buf()];
    }
    let mut hosts: Vec<_> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    hosts.sort();
    hosts
}

/// Every validator over one generated tree; a failure names the settings.
fn validate(s: &Site, out: &Path, ports: (u16, u16), what: &str) {
    let check = |cmd: &mut Command, tool_name: &str| {
        let o = run(cmd);
        let stderr = String::from_utf8_lossy(&o.stderr);
        // Warnings count: nginx's "conflicting server name" is a warning.
        assert!(
            o.status.success() && !stderr.contains("[warn]") && !stderr.contains("[emerg]"),
            "{tool_name} refused the files of {what}:\n{stderr}{}",
            String::from_utf8_lossy(&o.stdout)
        );
        o
    };
    for host in host_dirs(out) {
        if host.join("nginx").is_dir() {
            check(s.nginx(&host).arg("-t"), "nginx -t");
        }
        if host.join("systemd").is_dir() {
            let units = tempfile::tempdir_in(&s.scratch).unwrap();
            let files = instance_units(&host, units.path(), &s.name, &[ports.0, ports.1]);
            let o = check(
                Command::new(tool("systemd-analyze", "systemd"))
                    .arg("verify")
                    .args(&files),
                "systemd-analyze verify",
            );
            // Unknown or invalid lines only warn: any output fails.
            assert!(
                o.stderr.is_empty(),
                "systemd-analyze verify on {what}:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for rules in fs::read_dir(host.join("nftables")).unwrap() {
            check(
                Command::new(tool("nft", "nftables"))
                    .args(["-c", "-f"])
                    .arg(rules.unwrap().path()),
                "nft -c",
            );
        }
        check(
            Command::new(tool("shellcheck", "shellcheck")).arg(host.join("install.sh")),
            "shellcheck",
        );
    }
}

#[test]
fn every_generated_valid_setting_passes_nginx_systemd_and_nft() {
    let s = site("genset");
    let certs = Certs::make(&s.scratch.join("certs"));
    let settings = settings();
    let mut rng = Rng(0x6d61_6e61_6765_0009);
    let offsets: Vec<usize> = settings
        .iter()
        .map(|_| (rng.next() % 1024) as usize)
        .collect();
    let longest = settings.iter().map(|(_, e)| e.0.len()).max().unwrap();
    let t = |p: &str| s.scratch.join(p).display().to_string();
    // Three rounds over the longest list: every edge value at least three
    // times, each time beside different values of the other settings.
    for run_no in 0..3 * longest {
        let mut args: Vec<String> = [
            "--nginx-user",
            "root",
            "--nginx-pid",
            &t("nginx.pid"),
            "--nginx-log-dir",
            &t("logs"),
            "--nginx-temp-dir",
            &t("tmp"),
            "--letsencrypt-dir",
            &t("le"),
            "--binary",
            &t("bin/app"),
            "--tls-certificate",
            &certs.chain.display().to_string(),
            "--tls-certificate-key",
            &certs.key.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        for ((_, edges), offset) in settings.iter().zip(&offsets) {
            let pick = (run_no + offset) % edges.0.len();
            match edges.0[pick].as_slice() {
                [name, url] if name == "--static-url" => {
                    let manifest = s.project.join("Cargo.toml");
                    let text = fs::read_to_string(&manifest).unwrap();
                    let start = text.find("static-url = \"").unwrap();
                    let end = start + text[start..].find('\n').unwrap();
                    let text = format!("{}static-url = \"{url}\"{}", &text[..start], &text[end..]);
                    fs::write(&manifest, text).unwrap();
                    args.extend(["--static-url-was".to_owned(), url.clone()]);
                }
                flags => args.extend(flags.iter().cloned()),
            }
        }
        // The static URL is in Cargo.toml; named in `what` only.
        let static_url = args.iter().position(|a| a == "--static-url-was").unwrap();
        let what_url = args.drain(static_url..static_url + 2).nth(1).unwrap();
        let what = format!("run {run_no}: static-url {what_url:?} and {args:?}");
        // certbot's layout for the first domain, as letsencrypt mode reads it.
        let domain_arg = args.iter().position(|a| a == "--domain").unwrap() + 1;
        let first = args[domain_arg].split(',').next().unwrap();
        let first = first.trim_end_matches('.').to_ascii_lowercase();
        let le = s.scratch.join("le").join(&first);
        fs::create_dir_all(&le).unwrap();
        fs::copy(&certs.chain, le.join("fullchain.pem")).unwrap();
        fs::copy(&certs.key, le.join("privkey.pem")).unwrap();

        let out = s.scratch.join(format!("gen-{run_no}"));
        let o = manage()
            .current_dir(&s.project)
            .args(["deploy-config", "--out"])
            .arg(&out)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "deploy-config refused {what}:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let value = |name: &str| -> u16 {
            let i = args.iter().rposition(|a| a == name).unwrap();
            args[i + 1].parse().unwrap()
        };
        let (base, instances) = (value("--base-port"), value("--instances"));
        validate(&s, &out, (base, base + (instances - 1)), &what);
        fs::remove_dir_all(&out).unwrap();
    }
}
