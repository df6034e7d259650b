//! Lists of networks from the environment (`TRUSTED_PROXIES`,
//! `METRICS_ALLOW`): addresses or CIDR blocks, separated by commas or
//! spaces.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// Loopback, IPv4 and IPv6: the default for both lists.
pub const LOOPBACK: &str = "127.0.0.0/8, ::1/128";

/// A set of networks, cheap to clone (middleware state is cloned for
/// every request).
#[derive(Clone, Debug)]
pub struct Networks(Arc<[IpNet]>);

impl Networks {
    /// The networks in `$var`, else in `default`. A value that is not an
    /// address or a network is an error naming it.
    pub fn from_env(var: &str, default: &str) -> Result<Networks, String> {
        let value = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        Networks::parse(&value).map_err(|bad| {
            format!("{var}: `{bad}` is not an address or a network such as 10.0.0.0/8")
        })
    }

    /// Parses `a, b c`; the first item that is neither an address nor a
    /// network is the error.
    pub fn parse(list: &str) -> Result<Networks, String> {
        list.split([',', ' '])
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| item.to_owned())
            })
            .collect::<Result<Arc<[_]>, _>>()
            .map(Networks)
    }

    /// Whether `ip` is in one of the networks (an IPv4 address mapped into
    /// IPv6, as a dual-stack socket reports it, counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_networks_are_read_and_matched() {
        let nets = Networks::parse("10.0.0.0/8, 192.0.2.7 ::1").unwrap();
        assert!(nets.contains("10.1.2.3".parse().unwrap()));
        assert!(nets.contains("192.0.2.7".parse().unwrap()));
        assert!(!nets.contains("192.0.2.8".parse().unwrap()));
        assert!(nets.contains("::1".parse().unwrap()));
        assert!(nets.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(Networks::parse("10.0.0.0/8, nope").unwrap_err(), "nope");
        assert!(Networks::parse("10.0.0.0/33").is_err());
    }
}
