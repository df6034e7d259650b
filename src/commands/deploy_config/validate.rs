//! Raw settings in, a typed and fully validated template context out.
//!
//! Every value that reaches a template passes through here, because the
//! templates paste values into nginx, systemd, nftables, PostgreSQL and shell
//! syntax without escaping. Each value goes through a check of its kind
//! (`checks`); all problems are collected and reported together, and the
//! context is built only when there are none.

use std::net::IpAddr;

use super::checks::*;
use super::context::*;
use super::settings::{Settings, Shared};

/// The outcome: a context, or every problem found. Warnings are for
/// values that are valid but weaker than the default.
pub struct Validated {
    pub context: Context,
    pub warnings: Vec<String>,
}

/// Validates everything; `name` is the cargo package name (already valid).
pub fn validate(name: &str, s: &Settings, shared: &Shared) -> Result<Validated, Problems> {
    let mut p = Problems::default();
    let mut warnings = Vec::new();
    let crate_name = name.replace('-', "_");

    let domains: Vec<String> = s
        .domains
        .iter()
        .enumerate()
        .filter_map(|(i, d)| domain(&mut p, &format!("domains[{i}]"), d))
        .collect();
    let folded: Vec<String> = s.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    for (i, d) in folded.iter().enumerate() {
        if folded[..i].contains(d) {
            p.add(&format!("domains[{i}]"), &s.domains[i], "is listed twice");
        }
    }
    if s.domains.is_empty() {
        p.0.push("`domains` is empty: nginx needs at least one name to answer to".into());
    }

    let mode = match s.tls.as_str() {
        "letsencrypt" => "letsencrypt",
        "custom" => "custom",
        "off" => "off",
        other => {
            if safe(&mut p, "tls", other) {
                p.add("tls", other, "expected `letsencrypt`, `custom` or `off`");
            }
            "off"
        }
    };
    let acme_webroot = abs_path(&mut p, "acme-webroot", &s.acme_webroot).unwrap_or_default();
    let le_dir = abs_path(&mut p, "letsencrypt-dir", &s.letsencrypt_dir).unwrap_or_default();
    let cert_name = domains.first().cloned().unwrap_or_default();
    let (certificate, certificate_key) = match mode {
        "letsencrypt" => (
            format!("{le_dir}/{cert_name}/fullchain.pem"),
            format!("{le_dir}/{cert_name}/privkey.pem"),
        ),
        "custom" => {
            let mut get = |key: &str, v: &Option<String>| match v {
                Some(v) => abs_path(&mut p, key, v).unwrap_or_default(),
                None => {
                    p.0.push(format!("`{key}` is required with `tls = \"custom\"`"));
                    String::new()
                }
            };
            let cert = get("tls-certificate", &s.tls_certificate);
            let key = get("tls-certificate-key", &s.tls_certificate_key);
            (cert, key)
        }
        _ => (String::new(), String::new()),
    };
    if mode == "off" && s.tls == "off" {
        warnings.push(
            "TLS is off (`tls = \"off\"`): nginx serves plain HTTP; use it only behind another TLS terminator"
                .to_owned(),
        );
    }
    let tls_enabled = mode != "off";
    if tls_enabled && !s.hsts {
        warnings
            .push("HSTS is off (`hsts = false`): browsers may still be downgraded to HTTP".into());
    }

    let instances = match s.instances {
        1..=64 => s.instances as u16,
        n => {
            p.add(
                "instances",
                &n.to_string(),
                "expected 1 to 64 app processes",
            );
            0
        }
    };
    if instances == 1 {
        warnings.push("one instance (`instances = 1`): a restart or crash means downtime".into());
    }
    let base_port = port(&mut p, "base-port", s.base_port).unwrap_or(0);
    let ports: Vec<u16> =
        if base_port > 0 && u32::from(base_port) + u32::from(instances) - 1 <= 65535 {
            (0..instances).map(|i| base_port + i).collect()
        } else {
            if base_port > 0 {
                p.add(
                    "base-port",
                    &base_port.to_string(),
                    format!("{instances} instances from this port run past 65535"),
                );
            }
            Vec::new()
        };

    let http_port = port(&mut p, "http-port", s.http_port).unwrap_or(0);
    let https_port = port(&mut p, "https-port", s.https_port).unwrap_or(0);
    let ssh_port = port(&mut p, "ssh-port", s.ssh_port).unwrap_or(0);
    let db_port = port(&mut p, "db-port", s.db_port).unwrap_or(0);
    for (key, other) in [
        ("http-port", http_port),
        ("https-port", https_port),
        ("ssh-port", ssh_port),
    ] {
        if ports.contains(&other) {
            p.add(
                key,
                &other.to_string(),
                "collides with an app instance's port",
            );
        }
    }
    if tls_enabled && http_port == https_port && http_port != 0 {
        p.add(
            "https-port",
            &https_port.to_string(),
            "is the same as `http-port`",
        );
    }

    let user =
        user_name(&mut p, "user", s.user.as_deref().unwrap_or(&crate_name)).unwrap_or_default();
    let default_prefix = format!("/opt/{name}");
    let prefix = abs_path(
        &mut p,
        "prefix",
        s.prefix.as_deref().unwrap_or(&default_prefix),
    )
    .unwrap_or_default();
    let default_binary = format!("{prefix}/bin/{name}");
    let binary = abs_path(
        &mut p,
        "binary",
        s.binary.as_deref().unwrap_or(&default_binary),
    )
    .unwrap_or_default();
    let default_env = format!("/etc/{name}/env");
    let env_file = abs_path(
        &mut p,
        "env-file",
        s.env_file.as_deref().unwrap_or(&default_env),
    )
    .unwrap_or_default();
    let env_dir = match env_file.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((dir, _)) => dir.to_owned(),
    };
    if env_dir == "/" && !env_file.is_empty() {
        p.add(
            "env-file",
            &env_file,
            "must be in a directory of its own, like `/etc/NAME/env`",
        );
    }
    let default_static = format!("{prefix}/static");
    let static_root = abs_path(
        &mut p,
        "static-root",
        s.static_root.as_deref().unwrap_or(&default_static),
    )
    .unwrap_or_default();
    let static_url = url_path(
        &mut p,
        "static-url",
        s.static_url.as_deref().unwrap_or(&shared.static_url),
    )
    .unwrap_or_default();
    // Without a health path, any answer to `/` shows the app is up.
    let health_path = match &shared.health_path {
        Some(path) => request_path(&mut p, "health-path", path).unwrap_or_default(),
        None => "/".into(),
    };

    let client_max_body_size = number_with_unit(
        &mut p,
        "client-max-body-size",
        &s.client_max_body_size,
        &["", "k", "K", "m", "M", "g", "G"],
        "16m",
    )
    .unwrap_or_default();
    let times = ["ms", "s", "m", "h"];
    let proxy_connect_timeout = number_with_unit(
        &mut p,
        "proxy-connect-timeout",
        &s.proxy_connect_timeout,
        &times,
        "5s",
    )
    .unwrap_or_default();
    let proxy_read_timeout = number_with_unit(
        &mut p,
        "proxy-read-timeout",
        &s.proxy_read_timeout,
        &times,
        "60s",
    )
    .unwrap_or_default();
    let rate_limit = number_with_unit(
        &mut p,
        "rate-limit",
        &s.rate_limit,
        &["r/s", "r/m"],
        "10r/s",
    )
    .unwrap_or_default();
    if s.rate_limit_burst > 100_000 {
        p.add(
            "rate-limit-burst",
            &s.rate_limit_burst.to_string(),
            "expected at most 100000",
        );
    }

    let nginx_version = version(&mut p, "nginx-version", &s.nginx_version);
    if let Some(v) = nginx_version {
        // ssl_reject_handshake, which refuses TLS for unknown names.
        if v < (1, 19, 4) {
            p.add(
                "nginx-version",
                &s.nginx_version,
                "nginx 1.19.4 or newer is needed",
            );
        }
    }
    let nginx_version = nginx_version.unwrap_or((1, 22, 0));
    let openssl_version = version(&mut p, "openssl-version", &s.openssl_version);
    if openssl_version.is_some_and(|v| v < (1, 1, 1)) {
        p.add(
            "openssl-version",
            &s.openssl_version,
            "OpenSSL 1.1.1 or newer is needed for TLS 1.3",
        );
    }
    let openssl_version = openssl_version.unwrap_or((3, 0, 0));

    let nginx_user = user_name(&mut p, "nginx-user", &s.nginx_user).unwrap_or_default();
    let conf_dir = abs_path(&mut p, "nginx-conf-dir", &s.nginx_conf_dir).unwrap_or_default();
    let pid = abs_path(&mut p, "nginx-pid", &s.nginx_pid).unwrap_or_default();
    let log_dir = abs_path(&mut p, "nginx-log-dir", &s.nginx_log_dir).unwrap_or_default();
    let temp_dir = s
        .nginx_temp_dir
        .as_deref()
        .and_then(|t| abs_path(&mut p, "nginx-temp-dir", t));
    let listen_address = s
        .listen_address
        .as_deref()
        .and_then(|a| ip(&mut p, "listen-address", a));
    let listen = |port: u16| match listen_address {
        Some(a) => vec![format!("{}:{port}", socket_host(&a.to_string()))],
        None if s.ipv6 => vec![port.to_string(), format!("[::]:{port}")],
        None => vec![port.to_string()],
    };

    let db_name = sql_ident(
        &mut p,
        "db-name",
        s.db_name.as_deref().unwrap_or(&crate_name),
    )
    .unwrap_or_default();
    let db_user = sql_ident(
        &mut p,
        "db-user",
        s.db_user.as_deref().unwrap_or(&crate_name),
    )
    .unwrap_or_default();

    let egress: Vec<String> = s
        .app_egress
        .iter()
        .enumerate()
        .filter_map(|(i, n)| network(&mut p, &format!("app-egress[{i}]"), n))
        .collect();

    let topology = s.topology.as_ref().and_then(|t| {
        let web = ip(&mut p, "topology.web", &t.web);
        let db = ip(&mut p, "topology.db", &t.db);
        if t.app.is_empty() {
            p.0.push("`topology.app` is empty: list the app machines' addresses".into());
        }
        let apps: Vec<Option<IpAddr>> = t
            .app
            .iter()
            .enumerate()
            .map(|(i, a)| ip(&mut p, &format!("topology.app[{i}]"), a))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for a in web.iter().chain(db.iter()).chain(apps.iter().flatten()) {
            if !seen.insert(*a) {
                p.add(
                    "topology",
                    &a.to_string(),
                    "each machine needs an address of its own",
                );
            }
        }
        let apps: Option<Vec<IpAddr>> = apps.into_iter().collect();
        Some((web?, apps?, db?))
    });

    if !p.0.is_empty() {
        return Err(p);
    }

    let (topology, hosts, upstreams) = layout(topology, &ports, &egress);

    let context = Context {
        name: name.to_owned(),
        ident: crate_name,
        manage_version: env!("CARGO_PKG_VERSION"),
        domains,
        tls: Tls {
            enabled: tls_enabled,
            mode,
            certificate,
            certificate_key,
            acme_webroot,
            cert_name,
        },
        hsts: Hsts {
            enabled: s.hsts && s.hsts_max_age > 0,
            max_age: s.hsts_max_age,
        },
        ports,
        upstreams,
        user,
        prefix,
        binary,
        env_file,
        env_dir,
        static_root,
        static_url,
        health_path,
        client_max_body_size,
        proxy_connect_timeout,
        proxy_read_timeout,
        rate_limit,
        rate_limit_burst: s.rate_limit_burst,
        compress_types: COMPRESS_TYPES,
        nginx: Nginx {
            version: s.nginx_version.clone(),
            openssl_version: s.openssl_version.clone(),
            http2_directive: nginx_version >= (1, 25, 1),
            session_tickets_off: nginx_version < (1, 23, 2),
            // X25519MLKEM768 exists from OpenSSL 3.5; older ones refuse the
            // whole list. The `?` (OpenSSL 3.3+) skips it instead if the
            // machine turns out older than the setting says.
            ecdh_curve: if openssl_version >= (3, 5, 0) {
                "?X25519MLKEM768:X25519:prime256v1:secp384r1"
            } else {
                "X25519:prime256v1:secp384r1"
            },
            brotli: s.brotli,
            user: nginx_user,
            conf_dir,
            pid,
            log_dir,
            temp_dir,
            http_port,
            https_port,
            listen_http: listen(http_port),
            listen_https: listen(https_port),
            https_port_suffix: if https_port == 443 {
                String::new()
            } else {
                format!(":{https_port}")
            },
        },
        ssh_port,
        db: Db {
            port: db_port,
            name: db_name,
            user: db_user,
        },
        topology,
        hosts,
    };
    Ok(Validated { context, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(s: &Settings) -> Vec<String> {
        match validate("site", s, &Shared::default()) {
            Ok(_) => Vec::new(),
            Err(p) => p.0,
        }
    }

    fn base() -> Settings {
        Settings {
            domains: vec!["example.com".into()],
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_hardened() {
        let v = validate("site", &base(), &Shared::default()).unwrap_or_else(|p| panic!("{:?}", p.0));
        let c = v.context;
        assert_eq!(c.tls.mode, "letsencrypt");
        assert!(c.hsts.enabled);
        assert_eq!(c.ports, [8001, 8002]);
        assert_eq!(c.upstreams, ["127.0.0.1:8001", "127.0.0.1:8002"]);
        assert_eq!(
            c.tls.certificate,
            "/etc/letsencrypt/live/example.com/fullchain.pem"
        );
        assert!(!c.nginx.http2_directive);
        assert!(c.nginx.session_tickets_off);
        assert!(!c.nginx.ecdh_curve.contains("MLKEM"));
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    }

    #[test]
    fn version_gates() {
        let mut s = base();
        s.nginx_version = "1.25.1".into();
        s.openssl_version = "3.5".into();
        let c = validate("site", &s, &Shared::default()).ok().unwrap().context;
        assert!(c.nginx.http2_directive);
        assert!(!c.nginx.session_tickets_off);
        assert!(c.nginx.ecdh_curve.starts_with("?X25519MLKEM768:"));
        s.nginx_version = "1.18".into();
        assert!(problems(&s)[0].contains("1.19.4"));
    }

    #[test]
    fn every_problem_is_reported_with_setting_and_character() {
        let mut s = base();
        s.domains = vec!["ok.example".into(), "evil.com;".into(), "a b".into()];
        s.user = Some("ro{ot".into());
        s.static_root = Some("relative/dir".into());
        s.proxy_read_timeout = "60s\nevil".into();
        s.base_port = 70000;
        let all = problems(&s);
        assert_eq!(all.len(), 6, "{all:#?}");
        assert!(
            all[0].starts_with("`domains[1]` = `evil.com;`: `;`"),
            "{}",
            all[0]
        );
        assert!(
            all[1].contains("`domains[2]`") && all[1].contains("a space"),
            "{}",
            all[1]
        );
        assert!(all
            .iter()
            .any(|m| m.contains("`base-port`") && m.contains("65535")));
        assert!(all
            .iter()
            .any(|m| m.contains("`user`") && m.contains("`{`")));
        assert!(all
            .iter()
            .any(|m| m.contains("`static-root`") && m.contains("absolute")));
        assert!(all
            .iter()
            .any(|m| m.contains("`proxy-read-timeout`") && m.contains("a newline")));
    }

    #[test]
    fn topology_addresses_are_checked() {
        let mut s = base();
        s.topology = Some(super::super::settings::Topology {
            web: "10.0.0.10".into(),
            app: vec!["10.0.0.20".into(), "10.0.0.10".into(), "nope".into()],
            db: "10.0.0.300".into(),
        });
        let all = problems(&s);
        assert!(
            all.iter().any(|m| m.starts_with("`topology.db`")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|m| m.starts_with("`topology.app[2]`")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|m| m.contains("an address of its own")),
            "{all:#?}"
        );
    }

    #[test]
    fn custom_tls_needs_both_paths() {
        let mut s = base();
        s.tls = "custom".into();
        s.tls_certificate = Some("/etc/ssl/x.pem".into());
        let all = problems(&s);
        assert_eq!(
            all,
            ["`tls-certificate-key` is required with `tls = \"custom\"`"]
        );
    }
}
