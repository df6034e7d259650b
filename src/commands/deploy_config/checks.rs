//! Checks for single values: each kind (domain name, IP address, port,
//! path, user name, nginx size or time, version) has an allow-list, and the
//! characters that could end a directive or open a block in one of the
//! generated formats get a message of their own. A check records a problem
//! naming the setting and returns `None`; it never stops the others.

use std::net::IpAddr;

/// Collects problems; each names the setting and says what is wrong.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn add(&mut self, setting: &str, value: &str, why: impl std::fmt::Display) {
        self.0
            .push(format!("`{setting}` = `{}`: {why}", value.escape_debug()));
    }
}

/// Names a character so that invisible ones are visible in a message.
pub fn describe(c: char) -> String {
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
pub fn injection_char(value: &str) -> Option<char> {
    value.chars().find(|c| {
        matches!(c, ';' | '{' | '}' | '"' | '\'' | '`' | '#' | '$' | '\\')
            || c.is_whitespace()
            || c.is_control()
    })
}

/// True when `value` has no injection character; records a problem if not.
pub fn safe(p: &mut Problems, setting: &str, value: &str) -> bool {
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

pub fn first_not(value: &str, allowed: impl Fn(char) -> bool) -> Option<char> {
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
pub fn network(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
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
        // Only the canonical spelling: systemd drops the whole
        // IPAddressAllow= line for `/08` or `/+8`.
        match len.parse::<u8>() {
            Ok(n) if n <= max && len == n.to_string() => {}
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
    // 31: systemd's limit (UT_NAMESIZE - 1); a longer User= only warns.
    if !ok_first || value.len() > 31 {
        p.add(
            setting,
            value,
            "a unix user name starts with a lowercase letter or `_` and has at most 31 characters",
        );
        return None;
    }
    Some(value.to_owned())
}

/// A PostgreSQL identifier that needs no quoting.
pub fn sql_ident(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
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
pub fn number_with_unit(
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
pub fn version(p: &mut Problems, setting: &str, value: &str) -> Option<(u32, u32, u32)> {
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

pub fn url_path(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    // The same rule as runserver's, so a static URL means one thing.
    crate::settings::static_url(value)
        .map_err(|why| p.add(setting, value, why))
        .ok()
}

/// A request path for a health check: pasted into install.sh and sent as
/// an HTTP request line, so only plain path characters.
pub fn request_path(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    if let Some(c) = first_not(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '~')
    }) {
        p.add(
            setting,
            value,
            format!(
                "{} is not allowed in a health path (letters, digits, `/._-~`)",
                describe(c)
            ),
        );
        return None;
    }
    if !value.starts_with('/') {
        p.add(setting, value, "a health path starts with `/`");
        return None;
    }
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn injection_characters_are_named() {
        let mut p = Problems::default();
        for (value, named) in [
            ("/a;b", "`;`"),
            ("/a{b", "`{`"),
            ("/a}b", "`}`"),
            ("/a\"b", "`\"`"),
            ("/a'b", "`'`"),
            ("/a#b", "`#`"),
            ("/a$b", "`$`"),
            ("/a b", "a space"),
            ("/a\nb", "a newline"),
            ("/a\tb", "a tab"),
        ] {
            assert!(abs_path(&mut p, "prefix", value).is_none(), "{value:?}");
            let last = p.0.last().unwrap();
            assert!(
                last.starts_with("`prefix` = ")
                    && last.contains(&format!("{named} is not allowed")),
                "{last}"
            );
        }
        assert_eq!(p.0.len(), 10);
    }

    #[test]
    fn sizes_times_ports_users() {
        let mut p = Problems::default();
        assert!(number_with_unit(&mut p, "s", "16m", &["", "m"], "16m").is_some());
        assert!(number_with_unit(&mut p, "s", "m", &["", "m"], "16m").is_none());
        assert!(number_with_unit(&mut p, "s", "16q", &["", "m"], "16m").is_none());
        assert_eq!(port(&mut p, "p", 443), Some(443));
        assert!(port(&mut p, "p", 0).is_none() && port(&mut p, "p", 65536).is_none());
        assert!(user_name(&mut p, "u", "www-data").is_some());
        assert!(
            user_name(&mut p, "u", "1abc").is_none() && user_name(&mut p, "u", "Root").is_none()
        );
        assert!(
            network(&mut p, "n", "10.0.0.0/8").is_some()
                && network(&mut p, "n", "fd00::/129").is_none()
        );
        assert_eq!(
            abs_path(&mut p, "a", "/srv/www/").as_deref(),
            Some("/srv/www")
        );
        assert!(abs_path(&mut p, "a", "/srv/../etc").is_none());
    }
}
