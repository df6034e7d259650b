//! `tls = "letsencrypt"` on a real systemd: install.sh's first run gets the
//! certificate with certbot's webroot (HTTP-01, through the nginx it has
//! just set up) and only then serves HTTPS with it; a second run changes
//! nothing; a renewal (over HTTP-01 again, with the redirect to HTTPS in
//! force) runs the deploy hook install.sh put in place, and nginx serves
//! the new certificate.
//!
//! The ACME server is Pebble, Let's Encrypt's test server (Debian's
//! package), in the same container on loopback, its DNS lookups answered
//! by pebble-challtestsrv (every name is 127.0.0.1). certbot is pointed at
//! it by root's `~/.config/letsencrypt/cli.ini`, as an operator points it
//! at a staging server, and trusts Pebble's HTTPS through
//! REQUESTS_CA_BUNDLE; install.sh itself is the one deploy-config wrote.

use std::fs;
use std::time::{Duration, Instant};

use super::container::{debian_tree, Container};
use super::{copy_tree, release_build, NAME};
use crate::support::deploy::{site, Certs};
use crate::support::eventually;

const DOMAIN: &str = "shop.example.com";
/// Pebble's HTTPS certificate's CA, for certbot (requests) and curl.
const ACME_CA: &str = "/etc/pebble/ca.pem";

/// The certificate nginx serves for DOMAIN, checked against Pebble's root:
/// its serial number.
fn served_serial(c: &Container) -> String {
    let out = c.sh_ok(&format!(
        "curl -sS --max-time 10 --cacert /root/pebble-root.pem \
         --resolve {DOMAIN}:443:127.0.0.1 -o /dev/null -w '%{{certs}}' https://{DOMAIN}/healthz"
    ));
    out.lines()
        .find_map(|l| l.strip_prefix("Serial Number:"))
        .unwrap_or_else(|| panic!("no serial number in:\n{out}"))
        .trim()
        .to_owned()
}

#[test]
fn letsencrypt_first_install_gets_its_certificate_and_a_renewal_reloads_nginx() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);
    let c = Container::boot(&tree, "le");

    // Pebble on loopback, with an HTTPS certificate of a test CA; its
    // validation connects to port 80 of whatever challtestsrv answers.
    let certs = Certs::make(&s.scratch.join("certs"));
    let pebble = c.rootfs().join("etc/pebble");
    fs::create_dir_all(&pebble).unwrap();
    fs::copy(&certs.chain, pebble.join("cert.pem")).unwrap();
    fs::copy(&certs.key, pebble.join("key.pem")).unwrap();
    fs::copy(&certs.ca, pebble.join("ca.pem")).unwrap();
    fs::write(
        pebble.join("config.json"),
        r#"{"pebble": {"listenAddress": "127.0.0.1:14000",
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
            "externalAccountBindingRequired": false}}"#,
    )
    .unwrap();
    c.sh_ok(
        "systemd-run --quiet --unit=acme-dns pebble-challtestsrv -defaultIPv4 127.0.0.1 \
         -defaultIPv6 '' -dns01 127.0.0.1:8053 -http01 '' -https01 '' -tlsalpn01 '' \
         -management 127.0.0.1:8055",
    );
    c.sh_ok(
        "systemd-run --quiet --unit=acme --setenv=PEBBLE_VA_NOSLEEP=1 \
         --setenv=PEBBLE_WFE_NONCEREJECT=0 \
         pebble -config /etc/pebble/config.json -dnsserver 127.0.0.1:8053",
    );
    let up = eventually(Duration::from_secs(20), || {
        c.sh(&format!(
            "curl -fsS --max-time 2 --cacert {ACME_CA} https://localhost:14000/dir"
        ))
        .status
        .success()
        .then_some(())
    });
    assert!(
        up.is_some(),
        "pebble did not start:\n{}",
        c.sh_ok("journalctl --no-pager -u acme -u acme-dns | tail -30")
    );
    let config = c.rootfs().join("root/.config/letsencrypt");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("cli.ini"),
        "server = https://localhost:14000/dir\n",
    )
    .unwrap();

    let deploy = c.rootfs().join("root/deploy");
    s.deploy(
        &deploy,
        &["--domain", DOMAIN, "--tls", "letsencrypt"].map(String::from),
    );
    fs::copy(&exe, deploy.join(NAME)).unwrap();
    copy_tree(&s.project.join("static"), &deploy.join("static"));

    // Without an address for certbot, install.sh stops before it changes
    // anything, and says what to set.
    let refused = c.sh("cd /root/deploy && ./install.sh");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("CERTBOT_EMAIL=you@example.com ./install.sh (nothing was changed)"),
        "{said}"
    );
    c.sh_ok("test ! -e /etc/nginx && test ! -e /etc/letsencrypt/live");

    let install = format!(
        "cd /root/deploy && CERTBOT_EMAIL=ops@example.com REQUESTS_CA_BUNDLE={ACME_CA} ./install.sh"
    );
    let started = Instant::now();
    let first = c.sh_ok(&install);
    eprintln!(
        "install.sh with a certificate from the ACME server took {:.1?}",
        started.elapsed()
    );
    assert!(
        first.contains("==> done: this machine is set up;"),
        "{first}"
    );
    let live = format!("/etc/letsencrypt/live/{DOMAIN}");
    c.sh_ok(&format!(
        "test -s {live}/fullchain.pem && test -s {live}/privkey.pem"
    ));
    c.sh_ok("systemctl is-enabled --quiet certbot.timer");

    // HTTPS with the issued certificate, verified up to Pebble's root;
    // plain HTTP redirects there.
    c.sh_ok(&format!(
        "curl -fsS --cacert {ACME_CA} https://localhost:15000/roots/0 > /root/pebble-root.pem"
    ));
    let before = served_serial(&c);
    let health = c.sh_ok(&format!(
        "curl -sS --cacert /root/pebble-root.pem --resolve {DOMAIN}:443:127.0.0.1 \
         -o /dev/null -w '%{{http_code}}' https://{DOMAIN}/healthz"
    ));
    assert_eq!(health, "200");
    let redirect = c.sh_ok(&format!(
        "curl -sS --resolve {DOMAIN}:80:127.0.0.1 -o /dev/null -w '%{{http_code}} %{{redirect_url}}' \
         http://{DOMAIN}/notes"
    ));
    assert_eq!(redirect, format!("308 https://{DOMAIN}/notes"));

    let second = c.sh_ok(&install);
    assert!(
        second.contains("==> done: this machine was already set up; nothing changed"),
        "{second}"
    );

    // A renewal, as certbot's timer runs it (forced: the certificate is
    // new): the hook reloads nginx, which then serves the new certificate.
    c.sh_ok(&format!(
        "REQUESTS_CA_BUNDLE={ACME_CA} certbot renew --force-renewal --no-random-sleep-on-renew --quiet"
    ));
    let renewed = eventually(Duration::from_secs(10), || {
        let now = served_serial(&c);
        (now != before).then_some(now)
    });
    assert!(
        renewed.is_some(),
        "nginx still serves serial {before} after the renewal:\n{}",
        c.sh_ok("ls -l /etc/letsencrypt/renewal-hooks/deploy/; tail -20 /var/log/letsencrypt/letsencrypt.log")
    );
}
