//! The machines: the optional three-machine topology, the app's egress
//! allow-list, and the layout computed from them (which machine runs what,
//! who may talk to whom, and nginx's upstream of every app instance).

use std::net::IpAddr;

use super::super::checks::*;
use super::super::context::{Addr, Host, Net, Topology};
use super::super::settings::Settings;

/// The topology's addresses, checked: web, the app machines, db.
pub type Machines = (IpAddr, Vec<IpAddr>, IpAddr);

/// The networks the app instances may reach beyond the layout.
pub fn egress(p: &mut Problems, warnings: &mut Vec<String>, s: &Settings) -> Vec<String> {
    let egress: Vec<String> = s
        .app_egress
        .iter()
        .enumerate()
        .filter_map(|(i, n)| network(p, &format!("app-egress[{i}]"), n))
        .collect();
    for everything in egress.iter().filter(|n| n.ends_with("/0")) {
        warnings.push(format!(
            "`app-egress` has `{everything}`: the app may connect to any address, which undoes the egress filter"
        ));
    }
    egress
}

/// The networks SSH is open to, and the proxies nginx trusts for the
/// client address.
pub fn admin(
    p: &mut Problems,
    warnings: &mut Vec<String>,
    s: &Settings,
) -> (Vec<Net>, Vec<String>) {
    let admin: Vec<Net> = s
        .admin_networks
        .iter()
        .enumerate()
        .filter_map(|(i, n)| network(p, &format!("admin-networks[{i}]"), n))
        .map(|net| Net {
            family: if net.contains(':') { "ip6" } else { "ip" },
            net,
        })
        .collect();
    if s.admin_networks.is_empty() {
        warnings.push(format!(
            "SSH is open to every address on {}: set `admin-networks` to the networks you administer from",
            if s.topology.is_some() { "the web machine" } else { "this machine" }
        ));
    }
    let real_ip_from = s
        .real_ip_from
        .iter()
        .enumerate()
        .filter_map(|(i, n)| network(p, &format!("real-ip-from[{i}]"), n))
        .collect();
    (admin, real_ip_from)
}

/// A topology address: one machine's own unicast address. `::ffff:a.b.c.d`
/// is `a.b.c.d`, so that the same machine is not counted twice.
fn machine(
    p: &mut Problems,
    warnings: &mut Vec<String>,
    setting: &str,
    value: &str,
) -> Option<IpAddr> {
    let ip = ip(p, setting, value)?.to_canonical();
    let never = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => {
            Some("is the unspecified address, not a machine's")
        }
        IpAddr::V4(v4) if v4.is_broadcast() => Some("is the broadcast address, not a machine's"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("is a multicast address, not a machine's"),
        IpAddr::V4(v4) if v4.is_loopback() => {
            Some("is a loopback address; each machine needs the address the others reach it at")
        }
        IpAddr::V6(v6) if v6.is_unspecified() => {
            Some("is the unspecified address, not a machine's")
        }
        IpAddr::V6(v6) if v6.is_multicast() => Some("is a multicast address, not a machine's"),
        IpAddr::V6(v6) if v6.is_loopback() => {
            Some("is a loopback address; each machine needs the address the others reach it at")
        }
        // A link-local IPv6 address needs a zone (`%eth0`) to be reached,
        // which none of the generated files can carry.
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            Some("is a link-local IPv6 address, which cannot be reached without a zone")
        }
        _ => None,
    };
    if let Some(why) = never {
        p.add(setting, value, why);
        return None;
    }
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private() || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64),
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    };
    if matches!(ip, IpAddr::V4(v4) if v4.is_link_local()) {
        warnings.push(format!(
            "`{setting}` = `{value}` is a link-local address: it changes when the link does; use a fixed private address"
        ));
    } else if !private {
        warnings.push(format!(
            "`{setting}` = `{value}` is not a private address: the app and database listen on it, guarded only by the firewall"
        ));
    }
    Some(ip)
}

/// The topology's addresses, each valid and each machine's own; `None`
/// for the one-machine layout or when an address is invalid.
pub fn topology(p: &mut Problems, warnings: &mut Vec<String>, s: &Settings) -> Option<Machines> {
    let t = s.topology.as_ref()?;
    let web = machine(p, warnings, "topology.web", &t.web);
    let db = machine(p, warnings, "topology.db", &t.db);
    if t.app.is_empty() {
        p.0.push("`topology.app` is empty: list the app machines' addresses".into());
    }
    let apps: Vec<Option<IpAddr>> = t
        .app
        .iter()
        .enumerate()
        .map(|(i, a)| machine(p, warnings, &format!("topology.app[{i}]"), a))
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
}

pub fn addr(ip: IpAddr) -> Addr {
    Addr {
        address: ip.to_string(),
        family: if ip.is_ipv4() { "ip" } else { "ip6" },
        cidr: format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }),
    }
}

pub fn socket_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}

/// The machines of the layout, and every app instance's `host:port` for
/// nginx. One machine runs web and app; with a topology, each machine gets
/// its own directory and only the flows between them are allowed.
pub fn layout(
    topology: Option<Machines>,
    ports: &[u16],
    egress: &[String],
    admin: &[Net],
) -> (Option<Topology>, Vec<Host>, Vec<String>) {
    let localhost = "localhost".to_owned();
    match topology {
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
                    .chain(egress.iter().cloned())
                    .collect(),
                ssh_from: admin.to_vec(),
            };
            let upstreams = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            (None, vec![host], upstreams)
        }
        Some((web, apps, db)) => {
            // Behind the web machine, SSH comes from the admin networks, or
            // only from the web machine (the jump host) when none are set.
            let inner_ssh = if admin.is_empty() {
                let web = addr(web);
                vec![Net {
                    family: web.family,
                    net: web.address,
                }]
            } else {
                admin.to_vec()
            };
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
                ssh_from: admin.to_vec(),
            }];
            let mut upstreams = Vec::new();
            for (i, a) in apps.iter().enumerate() {
                let name = format!("app-{}", i + 1);
                let bind = a.to_string();
                for port in ports {
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
                    // The machine itself too: install.sh asks each
                    // instance for its health path before the next restart.
                    allow_in: vec![web.to_string(), a.to_string()],
                    allow_service: [web.to_string(), db.to_string(), localhost.clone()]
                        .into_iter()
                        .chain(egress.iter().cloned())
                        .collect(),
                    ssh_from: inner_ssh.clone(),
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
                ssh_from: inner_ssh,
            });
            let topology = Topology {
                web: addr(web),
                apps: apps.into_iter().map(addr).collect(),
                db: addr(db),
            };
            (Some(topology), hosts, upstreams)
        }
    }
}
