//! Raw settings in, a typed and fully validated template context out.
//!
//! Every value that reaches a template passes through here, because the
//! templates paste values into nginx, systemd, nftables, PostgreSQL and shell
//! syntax without escaping. Each kind of value has an allow-list (domain
//! names per RFC 1123, IP addresses, ports, absolute paths, unix user
//! names, nginx sizes and times); characters that could end a directive or
//! open a block (`;`, `{`, `}`, quotes, `#`, `$`, whitespace) get a message
//! of their own. All problems are collected and reported together.

use std::net::IpAddr;

use serde::Serialize;

use super::settings::Settings;

/// What the templates see. Field names are the template variables.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub name: String,
    /// `name` as an identifier for nginx zones and nftables tables.
    pub ident: String,
    pub manage_version: &'static str,
    pub domains: Vec<String>,
    pub tls: Tls,
    pub hsts: Hsts,
    pub ports: Vec<u16>,
    /// `host:port` of every app instance, for nginx's upstream.
    pub upstreams: Vec<String>,
    pub user: String,
    pub prefix: String,
    pub binary: String,
    pub env_file: String,
    pub env_dir: String,
    pub static_root: String,
    pub static_url: String,
    pub client_max_body_size: String,
    pub proxy_connect_timeout: String,
    pub proxy_read_timeout: String,
    pub rate_limit: String,
    pub rate_limit_burst: u64,
    pub compress_types: &'static str,
    pub nginx: Nginx,
    pub ssh_port: u16,
    pub db: Db,
    pub topology: Option<Topology>,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub enabled: bool,
    /// `letsencrypt`, `custom` or `off`.
    pub mode: &'static str,
    pub certificate: String,
    pub certificate_key: String,
    pub acme_webroot: String,
    pub cert_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hsts {
    pub enabled: bool,
    pub max_age: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nginx {
    pub version: String,
    pub openssl_version: String,
    /// `http2 on;` (nginx >= 1.25.1) instead of `listen ... http2`.
    pub http2_directive: bool,
    /// Ticket keys never rotate before nginx 1.23.2.
    pub session_tickets_off: bool,
    pub ecdh_curve: &'static str,
    pub brotli: bool,
    pub user: String,
    pub conf_dir: String,
    pub pid: String,
    pub log_dir: String,
    pub temp_dir: Option<String>,
    pub http_port: u16,
    pub https_port: u16,
    pub listen_http: String,
    pub listen_https: String,
    /// `:8443` when HTTPS is not on 443, for redirects.
    pub https_port_suffix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Db {
    pub port: u16,
    pub name: String,
    pub user: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub web: Addr,
    pub apps: Vec<Addr>,
    pub db: Addr,
}

#[derive(Debug, Clone, Serialize)]
pub struct Addr {
    pub address: String,
    /// nftables address family keyword: `ip` or `ip6`.
    pub family: &'static str,
    /// The single-address network, for pg_hba.conf.
    pub cidr: String,
}

/// One machine of the layout; templates get it as `host`.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// `web-1`, `app-2`, ...; empty in the one-machine layout.
    pub name: String,
    pub label: String,
    /// Output subdirectory with a trailing `/`, or empty.
    pub dir: String,
    pub address: String,
    pub roles: Vec<&'static str>,
    pub web: bool,
    pub app: bool,
    pub db: bool,
    /// Address the app sockets bind (`host.bind_socket` brackets IPv6).
    pub bind: String,
    pub bind_socket: String,
    /// Who may connect to the app sockets.
    pub allow_in: Vec<String>,
    /// Whom the app instances may talk to at all.
    pub allow_service: Vec<String>,
}

const COMPRESS_TYPES: &str = "text/plain text/css text/xml text/javascript application/json application/javascript application/xml application/rss+xml application/atom+xml image/svg+xml";

/// Collects problems; each names the setting and says what is wrong.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    fn add(&mut self, setting: &str, value: &str, why: impl std::fmt::Display) {
        self.0
            .push(format!("`{setting}` = `{}`: {why}", value.escape_debug()));
    }
}

/// Names a character so that invisible ones are visible in a message.
fn describe(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() || c.is_whitespace() => format!("`{}`", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}

/// The characters that end a directive, open a block, start a comment,
/// quote, or expand a variable in one of the generated formats.
fn injection_char(value: &str) -> Option<char> {
    value.chars().find(|c| {
        matches!(c, ';' | '{' | '}' | '"' | '\'' | '`' | '#' | '$' | '\\')
            || c.is_whitespace()
            || c.is_control()
    })
}

/// True when `value` has no injection character; records a problem if not.
fn safe(p: &mut Problems, setting: &str, value: &str) -> bool {
    if let Some(c) = injection_char(value) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed here (it could inject configuration)",
                describe(c)
            ),
        );
        return false;
    }
    true
}

fn first_not(value: &str, allowed: impl Fn(char) -> bool) -> Option<char> {
    value.chars().find(|&c| !allowed(c))
}

/// A host name per RFC 1123: dot-separated labels of letters, digits and
/// hyphens, 1-63 characters each, no hyphen at either end, 253 in all.
pub fn domain(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        p.add(setting, value, "a domain name cannot be empty");
        return None;
    }
    if name.len() > 253 {
        p.add(setting, value, "a domain name has at most 253 characters");
        return None;
    }
    for label in name.split('.') {
        if let Some(c) = first_not(label, |c| c.is_ascii_alphanumeric() || c == '-') {
            p.add(
                setting,
                value,
                format!(
                    "{} is not allowed in a domain name (RFC 1123: letters, digits, `-`, `.`)",
                    describe(c)
                ),
            );
            return None;
        }
        if label.is_empty() || label.len() > 63 {
            p.add(
                setting,
                value,
                "each label of a domain name has 1 to 63 characters",
            );
            return None;
        }
        if label.starts_with('-') || label.ends_with('-') {
            p.add(
                setting,
                value,
                "a domain label cannot start or end with `-`",
            );
            return None;
        }
    }
    if name.parse::<IpAddr>().is_ok() {
        p.add(
            setting,
            value,
            "a domain name, not an IP address, is needed here",
        );
        return None;
    }
    Some(name.to_ascii_lowercase())
}

pub fn ip(p: &mut Problems, setting: &str, value: &str) -> Option<IpAddr> {
    if !safe(p, setting, value) {
        return None;
    }
    match value.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            p.add(
                setting,
                value,
                "not an IP address (like `10.0.0.10` or `fd00::10`)",
            );
            None
        }
    }
}

/// An address or a network (`10.0.0.0/8`) for systemd's IPAddressAllow.
fn network(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let (addr, prefix) = match value.split_once('/') {
        Some((a, len)) => (a, Some(len)),
        None => (value, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        p.add(
            setting,
            value,
            "not an IP address or network (like `10.0.0.0/8`)",
        );
        return None;
    };
    if let Some(len) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match len.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => {
                p.add(
                    setting,
                    value,
                    format!("the prefix length must be 0 to {max}"),
                );
                return None;
            }
        }
    }
    Some(value.to_owned())
}

pub fn port(p: &mut Problems, setting: &str, value: u64) -> Option<u16> {
    match u16::try_from(value) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            p.add(
                setting,
                &value.to_string(),
                "a port is a number from 1 to 65535",
            );
            None
        }
    }
}

/// An absolute, normalised path of plain characters.
pub fn abs_path(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    if !value.starts_with('/') {
        p.add(
            setting,
            value,
            "must be an absolute path (starting with `/`)",
        );
        return None;
    }
    if let Some(c) = first_not(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ':' | ',')
    }) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed in a path (letters, digits, `/._-+@:,`)",
                describe(c)
            ),
        );
        return None;
    }
    if value.split('/').any(|c| c == ".." || c == ".") || value.contains("//") {
        p.add(
            setting,
            value,
            "must be a normalised path (no `.`, `..` or `//`)",
        );
        return None;
    }
    let trimmed = value.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

/// A unix user name as `useradd` accepts it by default.
pub fn user_name(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let mut chars = value.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if let Some(c) = first_not(value, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
    }) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed in a unix user name (`a-z`, `0-9`, `_`, `-`)",
                describe(c)
            ),
        );
        return None;
    }
    if !ok_first || value.len() > 32 {
        p.add(
            setting,
            value,
            "a unix user name starts with a lowercase letter or `_` and has at most 32 characters",
        );
        return None;
    }
    Some(value.to_owned())
}

/// A PostgreSQL identifier that needs no quoting.
fn sql_ident(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if let Some(c) = first_not(value, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    }) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed in a database name (`a-z`, `0-9`, `_`)",
                describe(c)
            ),
        );
        return None;
    }
    if !first_ok || value.len() > 63 {
        p.add(
            setting,
            value,
            "starts with a lowercase letter or `_`, at most 63 characters",
        );
        return None;
    }
    Some(value.to_owned())
}

/// `digits` then one of `suffixes` (or none when `bare` is allowed).
fn number_with_unit(
    p: &mut Problems,
    setting: &str,
    value: &str,
    suffixes: &[&str],
    example: &str,
) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let digits = value.chars().take_while(|c| c.is_ascii_digit()).count();
    let unit = &value[digits..];
    if digits == 0 || digits > 9 || !suffixes.contains(&unit) {
        p.add(
            setting,
            value,
            format!(
                "expected a number with one of the units {} (like `{example}`)",
                suffixes
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    }
    Some(value.to_owned())
}

/// `MAJOR.MINOR[.PATCH]`.
fn version(p: &mut Problems, setting: &str, value: &str) -> Option<(u32, u32, u32)> {
    if !safe(p, setting, value) {
        return None;
    }
    let parts: Vec<Option<u32>> = value.split('.').map(|s| s.parse().ok()).collect();
    match parts.as_slice() {
        [Some(a), Some(b)] => Some((*a, *b, 0)),
        [Some(a), Some(b), Some(c)] => Some((*a, *b, *c)),
        _ => {
            p.add(setting, value, "expected a version like `1.22` or `1.25.1`");
            None
        }
    }
}

fn url_path(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    if let Some(c) = first_not(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')
    }) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed in the static URL (letters, digits, `/._-`)",
                describe(c)
            ),
        );
        return None;
    }
    if !value.starts_with('/')
        || !value.ends_with('/')
        || value == "/"
        || value.contains("//")
        || value.split('/').any(|s| s == "..")
    {
        p.add(
            setting,
            value,
            "the static URL is a path like `/static/`: starting and ending with `/`, not `/` alone",
        );
        return None;
    }
    Some(value.to_owned())
}

fn addr(ip: IpAddr) -> Addr {
    Addr {
        address: ip.to_string(),
        family: if ip.is_ipv4() { "ip" } else { "ip6" },
        cidr: format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }),
    }
}

fn socket_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}

/// The outcome: a context, or every problem found. Warnings are for
/// values that are valid but weaker than the default.
pub struct Validated {
    pub context: Context,
    pub warnings: Vec<String>,
}

/// Validates everything; `name` is the cargo package name (already valid).
pub fn validate(name: &str, s: &Settings, shared_static_url: &str) -> Result<Validated, Problems> {
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
        s.static_url.as_deref().unwrap_or(shared_static_url),
    )
    .unwrap_or_default();

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
        Some(a) => format!("{}:{port}", socket_host(&a.to_string())),
        None => port.to_string(),
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

    let localhost = "localhost".to_owned();
    let (topology, hosts, upstreams) = match topology {
        None => {
            let host = Host {
                name: String::new(),
                label: "this machine".into(),
                dir: String::new(),
                address: String::new(),
                roles: vec!["web", "app"],
                web: true,
                app: true,
                db: false,
                bind: "127.0.0.1".into(),
                bind_socket: "127.0.0.1".into(),
                allow_in: vec![localhost.clone()],
                allow_service: [localhost.clone()]
                    .into_iter()
                    .chain(egress.clone())
                    .collect(),
            };
            let upstreams = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            (None, vec![host], upstreams)
        }
        Some((web, apps, db)) => {
            let mut hosts = vec![Host {
                name: "web-1".into(),
                label: "web-1".into(),
                dir: "web-1/".into(),
                address: web.to_string(),
                roles: vec!["web"],
                web: true,
                app: false,
                db: false,
                bind: String::new(),
                bind_socket: String::new(),
                allow_in: Vec::new(),
                allow_service: Vec::new(),
            }];
            let mut upstreams = Vec::new();
            for (i, a) in apps.iter().enumerate() {
                let name = format!("app-{}", i + 1);
                let bind = a.to_string();
                for port in &ports {
                    upstreams.push(format!("{}:{port}", socket_host(&bind)));
                }
                hosts.push(Host {
                    label: name.clone(),
                    dir: format!("{name}/"),
                    name,
                    address: bind.clone(),
                    roles: vec!["app"],
                    web: false,
                    app: true,
                    db: false,
                    bind_socket: socket_host(&bind),
                    bind,
                    allow_in: vec![web.to_string()],
                    allow_service: [web.to_string(), db.to_string(), localhost.clone()]
                        .into_iter()
                        .chain(egress.clone())
                        .collect(),
                });
            }
            hosts.push(Host {
                name: "db-1".into(),
                label: "db-1".into(),
                dir: "db-1/".into(),
                address: db.to_string(),
                roles: vec!["db"],
                web: false,
                app: false,
                db: true,
                bind: String::new(),
                bind_socket: String::new(),
                allow_in: Vec::new(),
                allow_service: Vec::new(),
            });
            let topology = Topology {
                web: addr(web),
                apps: apps.into_iter().map(addr).collect(),
                db: addr(db),
            };
            (Some(topology), hosts, upstreams)
        }
    };

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
        match validate("site", s, "/static/") {
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
        let v = validate("site", &base(), "/static/").unwrap_or_else(|p| panic!("{:?}", p.0));
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
        let c = validate("site", &s, "/static/").ok().unwrap().context;
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
    fn domains_follow_rfc_1123() {
        let mut p = Problems::default();
        for ok in ["example.com", "a.b-c.d", "localhost", "x1.example."] {
            assert!(domain(&mut p, "d", ok).is_some(), "{ok}");
        }
        for bad in [
            "-a.com",
            "a-.com",
            "a..com",
            "*.example.com",
            "ex_ample.com",
            "10.0.0.1",
            &"a".repeat(64),
        ] {
            assert!(domain(&mut p, "d", bad).is_none(), "{bad}");
        }
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
