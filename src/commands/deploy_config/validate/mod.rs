//! Raw settings in, a typed and fully validated template context out.
//!
//! Every value that reaches a template passes through here, because the
//! templates paste values into nginx, systemd, nftables, PostgreSQL and shell
//! syntax without escaping. Each value goes through a check of its kind
//! (`checks`); all problems are collected and reported together, and the
//! context is built only when there are none.

mod database;
mod kubernetes;
mod layout;
mod paths;
mod ports;
mod rates;
mod service;
mod supervision;
mod targets;
mod web;

pub use targets::Workspace;

use super::checks::Problems;
use super::context::{Context, Targets, COMPRESS_TYPES};
use super::settings::Settings;

/// The outcome: a context, or every problem found. Warnings are for
/// values that are valid but weaker than the default.
pub struct Validated {
    pub context: Context,
    pub warnings: Vec<String>,
}

/// Validates everything; `name` is the cargo package name (already valid),
/// `ws` the workspace as the container build sees it, and `implied` the
/// targets `--only` asks for besides those of the settings.
///
/// Each part of the context has its function; they run in the order of
/// the settings' documentation, so problems are reported in that order.
pub fn validate(
    name: &str,
    s: &Settings,
    shared: &crate::settings::Settings,
    ws: &Workspace,
    implied: Targets,
) -> Result<Validated, Problems> {
    let mut p = Problems::default();
    let mut warnings = Vec::new();
    let crate_name = name.replace('-', "_");

    let domains = web::domains(&mut p, s);
    // Known first (their problems are reported in their place below): a
    // custom certificate is a file only for nginx on a machine or in
    // compose; Kubernetes takes it from a Secret.
    let mut target_problems = Problems::default();
    let targets = targets::targets(&mut target_problems, s, implied);
    let web::TlsPart {
        tls,
        hsts,
        letsencrypt_dir,
    } = web::tls(
        &mut p,
        &mut warnings,
        s,
        &domains,
        targets.vm || targets.container,
    );
    let ports = ports::ports(&mut p, &mut warnings, s, tls.enabled);
    let paths = service::paths(&mut p, s, name, &crate_name, shared);
    let limits = web::limits(&mut p, &mut warnings, s);
    let nginx = web::nginx(&mut p, s, &ports, &domains);
    let egress = layout::egress(&mut p, &mut warnings, s);
    let machines = layout::topology(&mut p, &mut warnings, s);
    let (admin, real_ip_from) = layout::admin(&mut p, &mut warnings, s);
    let path_limits = rates::path_limits(&mut p, s, &crate_name, &paths.static_url);
    let supervision = supervision::supervision(&mut p, s, ws.notifies);
    let db = database::database(
        &mut p,
        s,
        name,
        &crate_name,
        ports.db,
        machines.as_ref().map(|m| m.2),
        &paths.env_dir,
    );
    accounts(&mut warnings, &paths.user, &nginx.user, &db.user);
    p.0.extend(target_problems.0);
    // A target that is off is not checked: its defaults stand in.
    let mut unused = Problems::default();
    // The Kubernetes manifests run the container target's image, as its
    // user and on its port: its settings are checked for either target.
    let container = {
        let p = if targets.container || targets.kubernetes {
            &mut p
        } else {
            &mut unused
        };
        // Its warnings are the Dockerfile's, written for `container` only.
        let mut unsaid = Vec::new();
        let w = if targets.container {
            &mut warnings
        } else {
            &mut unsaid
        };
        targets::container(p, w, s, name, ws)
    };
    let kubernetes = {
        let p = if targets.kubernetes {
            &mut p
        } else {
            &mut unused
        };
        let inputs = kubernetes::Inputs {
            name,
            version: &ws.version,
            replicas: ports.instances.len() as u64,
            db: &db,
            limits: &limits,
        };
        kubernetes::kubernetes(p, s, &inputs)
    };

    let custom = tls.mode == "custom";
    let in_use = |on: bool, path: &str| if on { path.to_owned() } else { String::new() };
    paths::not_served(
        &mut p,
        &[
            ("static-root", &paths.static_root),
            (
                "acme-webroot",
                &in_use(letsencrypt_dir.is_some(), &tls.acme_webroot),
            ),
        ],
        &[
            ("prefix", &paths.prefix),
            ("binary", &paths.binary),
            ("env-file", &paths.env_file),
            (
                "letsencrypt-dir",
                letsencrypt_dir.as_deref().unwrap_or_default(),
            ),
            ("tls-certificate", &in_use(custom, &tls.certificate)),
            ("tls-certificate-key", &in_use(custom, &tls.certificate_key)),
            ("nginx-conf-dir", &nginx.conf_dir),
            ("nginx-pid", &nginx.pid),
            ("nginx-log-dir", &nginx.log_dir),
            (
                "nginx-temp-dir",
                nginx.temp_dir.as_deref().unwrap_or_default(),
            ),
        ],
    );

    if !p.0.is_empty() {
        return Err(p);
    }

    let (topology, hosts, upstreams) = layout::layout(machines, &ports.instances, &egress, &admin);
    let context = Context {
        name: name.to_owned(),
        ident: crate_name,
        manage_version: env!("CARGO_PKG_VERSION"),
        domains,
        tls,
        hsts,
        ports: ports.instances,
        upstreams,
        user: paths.user,
        prefix: paths.prefix,
        binary: paths.binary,
        env_file: paths.env_file,
        env_dir: paths.env_dir,
        static_root: paths.static_root,
        static_url: paths.static_url,
        health_path: paths.health_path,
        supervision,
        start_limit_burst: 5,
        start_limit_interval: 30,
        client_max_body_size: limits.client_max_body_size,
        proxy_connect_timeout: limits.proxy_connect_timeout,
        proxy_read_timeout: limits.proxy_read_timeout,
        rate_limit: limits.rate_limit,
        rate_limit_burst: limits.rate_limit_burst,
        path_limits,
        compress_types: COMPRESS_TYPES,
        nginx,
        ssh_port: ports.ssh,
        real_ip_from,
        unattended_upgrades: s.unattended_upgrades,
        db,
        topology,
        hosts,
        targets,
        container,
        kubernetes,
    };
    Ok(Validated { context, warnings })
}

/// Accounts that work but share power with others.
fn accounts(warnings: &mut Vec<String>, user: &str, nginx_user: &str, db_user: &str) {
    if nginx_user == "root" {
        warnings.push(
            "nginx workers run as root (`nginx-user = \"root\"`): a flaw in nginx would own the machine"
                .into(),
        );
    }
    if !user.is_empty() && user == nginx_user {
        warnings.push(format!(
            "the app runs as nginx's user `{user}`: each can read and change the other's files"
        ));
    }
    if user == "nobody" {
        warnings.push(
            "the app runs as `nobody`, which other services share; the default, the project's own name, is safer"
                .into(),
        );
    }
    if db_user == "postgres" {
        warnings.push(
            "`db-user = \"postgres\"` is PostgreSQL's superuser: the app could do anything to every database"
                .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(s: &Settings) -> Vec<String> {
        match validate(
            "site",
            s,
            &Default::default(),
            &Default::default(),
            Targets::default(),
        ) {
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
        let v = validate(
            "site",
            &base(),
            &Default::default(),
            &Default::default(),
            Targets::default(),
        )
        .unwrap_or_else(|p| panic!("{:?}", p.0));
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
        // The one default that only warns: SSH open until admin-networks says
        // where the operators are.
        assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
        assert!(v.warnings[0].contains("admin-networks"), "{:?}", v.warnings);
    }

    #[test]
    fn version_gates() {
        let mut s = base();
        s.nginx_version = "1.25.1".into();
        s.openssl_version = "3.5".into();
        let c = validate(
            "site",
            &s,
            &Default::default(),
            &Default::default(),
            Targets::default(),
        )
        .ok()
        .unwrap()
        .context;
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
        s.topology = Some(crate::commands::deploy_config::settings::Topology {
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
        // Kubernetes alone takes the certificate from a Secret (the other
        // problems are the empty workspace's, which no project has).
        let about_tls = |s: &Settings| {
            problems(s)
                .into_iter()
                .filter(|m| m.contains("tls-certificate"))
                .count()
        };
        s.tls_certificate = None;
        s.targets = vec!["kubernetes".into()];
        s.database = Some("postgres".into());
        assert_eq!(about_tls(&s), 0);
        s.targets = vec!["kubernetes".into(), "container".into()];
        assert_eq!(about_tls(&s), 2);
    }
}
