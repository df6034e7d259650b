//! What nginx answers with: the names it serves, TLS and HSTS, and nginx
//! itself (request limits, target versions, its user, directories and
//! listen addresses).

use super::super::checks::*;
use super::super::context::{Hsts, Nginx, Tls};
use super::super::settings::Settings;
use super::layout::socket_host;
use super::paths::app_path;
use super::ports::Ports;

/// Every name in `domains`, each valid and none twice.
pub fn domains(p: &mut Problems, s: &Settings) -> Vec<String> {
    let checked: Vec<Option<String>> = s
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| domain(p, &format!("domains[{i}]"), d))
        .collect();
    // Compared as nginx sees them: `Example.com.` is `example.com`, and a
    // second server_name for it is a conflict nginx warns about.
    for (i, d) in checked.iter().enumerate() {
        if d.is_some() && checked[..i].contains(d) {
            p.add(&format!("domains[{i}]"), &s.domains[i], "is listed twice");
        }
    }
    let domains: Vec<String> = checked.into_iter().flatten().collect();
    if s.domains.is_empty() {
        p.0.push("`domains` is empty: nginx needs at least one name to answer to".into());
    }
    domains
}

/// The TLS part: what templates see, and certbot's directory when it is
/// in use (for the checks across paths).
pub struct TlsPart {
    pub tls: Tls,
    pub hsts: Hsts,
    pub letsencrypt_dir: Option<String>,
}

/// The TLS mode and the certificate paths it implies, and HSTS.
/// `cert_files`: a custom certificate must be given as files (nginx on a
/// machine or in compose), not only as a Kubernetes Secret.
pub fn tls(
    p: &mut Problems,
    warnings: &mut Vec<String>,
    s: &Settings,
    domains: &[String],
    cert_files: bool,
) -> TlsPart {
    let mode = match s.tls.as_str() {
        "letsencrypt" => "letsencrypt",
        "custom" => "custom",
        "off" => "off",
        other => {
            if safe(p, "tls", other) {
                p.add("tls", other, "expected `letsencrypt`, `custom` or `off`");
            }
            "off"
        }
    };
    let acme_webroot = app_path(p, "acme-webroot", &s.acme_webroot).unwrap_or_default();
    let le_dir = app_path(p, "letsencrypt-dir", &s.letsencrypt_dir).unwrap_or_default();
    let cert_name = domains.first().cloned().unwrap_or_default();
    let (certificate, certificate_key) = match mode {
        "letsencrypt" => (
            format!("{le_dir}/{cert_name}/fullchain.pem"),
            format!("{le_dir}/{cert_name}/privkey.pem"),
        ),
        "custom" => {
            let mut get = |key: &str, v: &Option<String>| match v {
                Some(v) => app_path(p, key, v).unwrap_or_default(),
                None if cert_files => {
                    p.0.push(format!("`{key}` is required with `tls = \"custom\"`"));
                    String::new()
                }
                None => String::new(),
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
    let enabled = mode != "off";
    if enabled && !s.hsts {
        warnings
            .push("HSTS is off (`hsts = false`): browsers may still be downgraded to HTTP".into());
    } else if enabled && s.hsts_max_age == 0 {
        warnings.push(
            "HSTS is off (`hsts-max-age = 0`): no Strict-Transport-Security header is sent, so browsers may still be downgraded to HTTP"
                .into(),
        );
    } else if enabled && s.hsts && s.hsts_max_age < ONE_YEAR {
        warnings.push(format!(
            "`hsts-max-age = {}` is under a year: browsers forget HTTPS-only sooner (the default is 63072000, two years)",
            s.hsts_max_age
        ));
    }
    let tls = Tls {
        enabled,
        mode,
        certificate,
        certificate_key,
        acme_webroot,
        cert_name,
    };
    let hsts = Hsts {
        enabled: s.hsts && s.hsts_max_age > 0,
        max_age: s.hsts_max_age,
    };
    TlsPart {
        letsencrypt_dir: (mode == "letsencrypt").then_some(le_dir),
        tls,
        hsts,
    }
}

const ONE_YEAR: u64 = 365 * 24 * 60 * 60;

/// The request limits nginx applies in front of the app.
pub struct Limits {
    pub client_max_body_size: String,
    pub proxy_connect_timeout: String,
    pub proxy_read_timeout: String,
    pub rate_limit: String,
    pub rate_limit_burst: u64,
}

pub fn limits(p: &mut Problems, warnings: &mut Vec<String>, s: &Settings) -> Limits {
    let client_max_body_size = number_with_unit(
        p,
        "client-max-body-size",
        &s.client_max_body_size,
        &["", "k", "K", "m", "M", "g", "G"],
        "16m",
    )
    .unwrap_or_default();
    if client_max_body_size
        .trim_end_matches(char::is_alphabetic)
        .parse::<u64>()
        == Ok(0)
    {
        warnings.push(
            "`client-max-body-size = \"0\"` turns off nginx's limit on request bodies: any client may upload without bound"
                .into(),
        );
    }
    let times = ["ms", "s", "m", "h"];
    let proxy_connect_timeout = number_with_unit(
        p,
        "proxy-connect-timeout",
        &s.proxy_connect_timeout,
        &times,
        "5s",
    )
    .unwrap_or_default();
    let proxy_read_timeout = number_with_unit(
        p,
        "proxy-read-timeout",
        &s.proxy_read_timeout,
        &times,
        "60s",
    )
    .unwrap_or_default();
    // A zero timeout fails every request: nginx gives up at once.
    for (key, value) in [
        ("proxy-connect-timeout", &proxy_connect_timeout),
        ("proxy-read-timeout", &proxy_read_timeout),
    ] {
        if value.trim_end_matches(char::is_alphabetic).parse::<u64>() == Ok(0) {
            p.add(
                key,
                value,
                "must be more than 0: every request would time out",
            );
        }
    }
    let rate_limit = number_with_unit(p, "rate-limit", &s.rate_limit, &["r/s", "r/m"], "30r/s")
        .unwrap_or_default();
    // nginx refuses a zero rate and a zero burst ("invalid rate").
    let requests = rate_limit.trim_end_matches(|c: char| !c.is_ascii_digit());
    if requests.parse::<u64>() == Ok(0) {
        p.add("rate-limit", &rate_limit, "expected at least 1 request");
    }
    if !(1..=100_000).contains(&s.rate_limit_burst) {
        p.add(
            "rate-limit-burst",
            &s.rate_limit_burst.to_string(),
            "expected 1 to 100000",
        );
    }
    Limits {
        client_max_body_size,
        proxy_connect_timeout,
        proxy_read_timeout,
        rate_limit,
        rate_limit_burst: s.rate_limit_burst,
    }
}

/// nginx itself: the versions that gate syntax, its user and directories,
/// and the addresses it listens on.
pub fn nginx(p: &mut Problems, s: &Settings, ports: &Ports, domains: &[String]) -> Nginx {
    let nginx_version = version(p, "nginx-version", &s.nginx_version);
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
    let openssl_version = version(p, "openssl-version", &s.openssl_version);
    if openssl_version.is_some_and(|v| v < (1, 1, 1)) {
        p.add(
            "openssl-version",
            &s.openssl_version,
            "OpenSSL 1.1.1 or newer is needed for TLS 1.3",
        );
    }
    let openssl_version = openssl_version.unwrap_or((3, 0, 0));

    let user = user_name(p, "nginx-user", &s.nginx_user).unwrap_or_default();
    let conf_dir = app_path(p, "nginx-conf-dir", &s.nginx_conf_dir).unwrap_or_default();
    let pid = app_path(p, "nginx-pid", &s.nginx_pid).unwrap_or_default();
    let log_dir = app_path(p, "nginx-log-dir", &s.nginx_log_dir).unwrap_or_default();
    let temp_dir = s
        .nginx_temp_dir
        .as_deref()
        .and_then(|t| app_path(p, "nginx-temp-dir", t));
    let listen_address = s
        .listen_address
        .as_deref()
        .and_then(|a| ip(p, "listen-address", a));
    let listen = |port: u16| match listen_address {
        Some(a) => vec![format!("{}:{port}", socket_host(&a.to_string()))],
        None if s.ipv6 => vec![port.to_string(), format!("[::]:{port}")],
        None => vec![port.to_string()],
    };

    let (http_port, https_port) = (ports.http, ports.https);
    Nginx {
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
        server_names_hash_bucket_size: server_names_hash_bucket_size(domains),
        user,
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
        in_container: false,
        upstream_resolve: false,
    }
}

/// A `server_names_hash_bucket_size` that holds the longest domain.
///
/// nginx's default is the CPU's cache line (64 bytes on x86), and a bucket
/// must fit one entry, a pointer plus the name and 2 bytes rounded up to a
/// pointer's size, and an end marker. So a name of 47 characters or more
/// fails `nginx -t` without it (#9, item 8). Stated always, so that the
/// file behaves the same on a machine with a smaller cache line.
fn server_names_hash_bucket_size(domains: &[String]) -> usize {
    const POINTER: usize = 8;
    let longest = domains.iter().map(String::len).max().unwrap_or(0);
    let entry = POINTER + (longest + 2).div_ceil(POINTER) * POINTER;
    (entry + POINTER).next_power_of_two().max(64)
}
