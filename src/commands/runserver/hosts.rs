//! The Host check against DNS rebinding (as Django's `ALLOWED_HOSTS` and
//! Vite's `server.allowedHosts`), over a strict parse of the header.
//!
//! A Host value is `host [":" port]` (RFC 9110 §7.2): a bracketed IPv6
//! address, an IPv4 address or a DNS name, and an optional port that fits
//! in 16 bits. Anything else (userinfo, a fragment, a half-open bracket,
//! text after the bracket) is not a host at all and gets 400, never a
//! panic and never a lenient guess.

use std::net::{IpAddr, Ipv6Addr};

use hyper::http::uri::Authority;

/// Which hosts the development server answers for.
pub struct AllowedHosts {
    /// Lowercase names without port; `.example.com` allows subdomains; `*` all.
    pub extra: Vec<String>,
    /// The address manage is bound to.
    pub bound: IpAddr,
}

/// A Host header value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Lowercase, without a trailing dot; IPv6 addresses in brackets.
    pub name: String,
    pub ip: Option<IpAddr>,
}

/// The verdict on one request's Host.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A well-formed host that is not on the list (its name, for the hint).
    NotAllowed(String),
    /// Not a host at all.
    Invalid,
}

impl AllowedHosts {
    pub fn check(&self, value: &str) -> Verdict {
        match parse(value) {
            None => Verdict::Invalid,
            Some(host) if self.allows(&host) => Verdict::Allowed,
            Some(host) => Verdict::NotAllowed(host.name),
        }
    }

    fn allows(&self, host: &Host) -> bool {
        let name = host.name.as_str();
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if let Some(ip) = host.ip {
            if ip.is_loopback() || (ip == self.bound && !ip.is_unspecified()) {
                return true;
            }
        }
        self.extra.iter().any(|allowed| {
            allowed == "*"
                || allowed == name
                || (allowed.starts_with('.')
                    && (name.ends_with(allowed.as_str()) || name == &allowed[1..]))
        })
    }
}

/// Parses a Host header value (or a request target's authority).
pub fn parse(value: &str) -> Option<Host> {
    let authority: Authority = value.parse().ok()?;
    // `Authority` also takes userinfo (`a@b`), which a Host never has.
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    // Nothing but `:port` may follow the host (`Authority` is lenient
    // about text after a bracket).
    match value.strip_prefix(host)? {
        "" => {}
        rest => {
            let port = rest.strip_prefix(':')?;
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            port.parse::<u16>().ok()?;
        }
    }
    if let Some(inner) = host.strip_prefix('[') {
        let ip: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
        return Some(Host {
            name: format!("[{ip}]"),
            ip: Some(IpAddr::V6(ip)),
        });
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !labels_ok {
        return None;
    }
    let ip = name.parse().ok().map(IpAddr::V4);
    Some(Host { name, ip })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> AllowedHosts {
        AllowedHosts {
            extra: vec!["myapp.test".into(), ".example.com".into()],
            bound: "192.168.1.5".parse().unwrap(),
        }
    }

    #[test]
    fn allowed_hosts() {
        let hosts = hosts();
        for ok in [
            "localhost",
            "localhost:8000",
            "LOCALHOST",
            "localhost.",
            "app.localhost:8000",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]:8000",
            "[::1]",
            "192.168.1.5:8000",
            "myapp.test",
            "myapp.test:80",
            "example.com",
            "a.example.com",
        ] {
            assert_eq!(hosts.check(ok), Verdict::Allowed, "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:8000",
            "localhost.evil.com",
            "10.0.0.1",
            "0.0.0.0:8000",
            "myapp.test.evil",
            "badexample.com",
        ] {
            assert!(
                matches!(hosts.check(bad), Verdict::NotAllowed(_)),
                "{bad} allowed"
            );
        }
        let any = AllowedHosts {
            extra: vec!["*".into()],
            bound: "0.0.0.0".parse().unwrap(),
        };
        assert_eq!(any.check("anything.example"), Verdict::Allowed);
    }

    #[test]
    fn malformed_hosts_are_invalid_not_a_panic() {
        let hosts = hosts();
        for bad in [
            "",
            "[",
            "[abc",
            "[::1",
            "[::1]evil.com",
            "[::1]@evil.com",
            "localhost@evil.com",
            "user:pw@localhost",
            "evil.com#.localhost",
            "localhost:99999999999",
            "localhost:65536",
            "localhost:",
            "localhost:-1",
            "localhost:+80",
            "local host",
            "localhost/x",
            "localhost?x",
            "..",
            "a..localhost",
            "[::1]:80:80",
            "[fe80::1%25eth0]",
            "\u{e9}.localhost",
        ] {
            assert_eq!(hosts.check(bad), Verdict::Invalid, "{bad:?}");
        }
    }
}
