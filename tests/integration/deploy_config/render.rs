//! `manage deploy-config`: what it writes, its settings and flags, and
//! every bad input refused without touching the disk. `--check`, `--force`
//! and `--only`: `writing.rs`; the real tools and live traffic:
//! `tests/live/deploy_config/`.

use std::fs;
use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::deploy::{run, run_ok, site, venv_tool};
use crate::support::{manage, tree};

#[test]
fn defaults_give_a_complete_hardened_set() {
    let s = site("mysite");
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .success()
        .stderr(
            predicate::str::contains("Writing").and(predicate::function(|e: &str| {
                // One warning only: SSH stays open until admin-networks is set.
                e.matches("warning:").count() == 1
                    && e.contains("warning: SSH is open to every address on this machine")
            })),
        );
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
            "nginx/nginx.service.d/",
            "nginx/nginx.service.d/mysite.conf",
            "systemd/",
            "systemd/mysite-alert@.service",
            "systemd/mysite-migrate.service",
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
        "Releases and rolling restarts",
        "install.sh rollback",
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
        (
            &["--db-name", "my-db"],
            "`db-name` = `my-db`: `-` is not allowed",
        ),
        (&["--ssh-port", "8001"], "`ssh-port` = `8001`: collides"),
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

#[test]
fn the_project_can_be_chosen_with_manifest_path() {
    let s = site("farsite");
    let elsewhere = tempfile::tempdir().unwrap();
    manage()
        .current_dir(elsewhere.path())
        .args(["deploy-config", "--only", "systemd", "--manifest-path"])
        .arg(s.project.join("Cargo.toml"))
        .assert()
        .success();
    assert!(s.project.join("deploy/systemd/farsite@.service").is_file());
    assert!(tree(elsewhere.path()).is_empty());
    manage()
        .current_dir(elsewhere.path())
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("could not read a cargo project"));
}
