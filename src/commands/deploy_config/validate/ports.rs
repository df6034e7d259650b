//! The ports: one per app instance, nginx's two, ssh's and the database's,
//! none of them shared by accident.

use super::super::checks::*;
use super::super::settings::Settings;

pub struct Ports {
    /// One per app instance, consecutive from `base-port`.
    pub instances: Vec<u16>,
    pub http: u16,
    pub https: u16,
    pub ssh: u16,
    pub db: u16,
}

pub fn ports(
    p: &mut Problems,
    warnings: &mut Vec<String>,
    s: &Settings,
    tls_enabled: bool,
) -> Ports {
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
    let base_port = port(p, "base-port", s.base_port).unwrap_or(0);
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

    let http = port(p, "http-port", s.http_port).unwrap_or(0);
    let https = port(p, "https-port", s.https_port).unwrap_or(0);
    let ssh = port(p, "ssh-port", s.ssh_port).unwrap_or(0);
    let db = port(p, "db-port", s.db_port).unwrap_or(0);
    for (key, other) in [
        ("http-port", http),
        ("https-port", https),
        ("ssh-port", ssh),
    ] {
        if ports.contains(&other) {
            p.add(
                key,
                &other.to_string(),
                "collides with an app instance's port",
            );
        }
    }
    if tls_enabled && http == https && http != 0 {
        p.add(
            "https-port",
            &https.to_string(),
            "is the same as `http-port`",
        );
    }
    Ports {
        instances: ports,
        http,
        https,
        ssh,
        db,
    }
}
