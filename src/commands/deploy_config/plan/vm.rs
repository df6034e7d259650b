//! The machines' files: nginx on the web machine, systemd units on the app
//! machines, PostgreSQL on the db machine, and an nftables ruleset and
//! install.sh on each (one machine has them all).

use super::{Component, Planned, Root, View};
use crate::commands::deploy_config::context::Context;

pub fn plan(ctx: &Context, files: &mut Vec<Planned>) {
    let name = &ctx.name;
    for (i, host) in ctx.hosts.iter().enumerate() {
        let dir = &host.dir;
        let mut add = |component, template, path: String, mode| {
            files.push(Planned {
                component,
                template,
                root: Root::Out,
                path: format!("{dir}{path}"),
                view: View::Machine(i),
                mode,
            })
        };
        if host.web {
            use Component::Nginx;
            add(
                Nginx,
                "nginx/nginx.conf.jinja",
                "nginx/nginx.conf".into(),
                None,
            );
            add(
                Nginx,
                "nginx/hardening.conf.jinja",
                format!("nginx/nginx.service.d/{name}.conf"),
                None,
            );
            add(
                Nginx,
                "nginx/http.conf.jinja",
                format!("nginx/{name}/sites/http.conf"),
                None,
            );
            if ctx.tls.enabled {
                add(
                    Nginx,
                    "nginx/https.conf.jinja",
                    format!("nginx/{name}/sites/https.conf"),
                    None,
                );
            }
            add(
                Nginx,
                "nginx/security-headers.conf.jinja",
                format!("nginx/{name}/snippets/security-headers.conf"),
                None,
            );
            add(
                Nginx,
                "nginx/proxy.conf.jinja",
                format!("nginx/{name}/snippets/proxy.conf"),
                None,
            );
        }
        if host.app {
            use Component::Systemd;
            add(
                Systemd,
                "systemd/socket.jinja",
                format!("systemd/{name}@.socket"),
                None,
            );
            add(
                Systemd,
                "systemd/service.jinja",
                format!("systemd/{name}@.service"),
                None,
            );
            add(
                Systemd,
                "systemd/target.jinja",
                format!("systemd/{name}.target"),
                None,
            );
            add(
                Systemd,
                "systemd/alert.jinja",
                format!("systemd/{name}-alert@.service"),
                None,
            );
            add(
                Systemd,
                "systemd/migrate.service.jinja",
                format!("systemd/{name}-migrate.service"),
                None,
            );
        }
        if host.db {
            use Component::Postgres;
            add(
                Postgres,
                "postgres/postgresql.conf.jinja",
                format!("postgres/{name}.conf"),
                None,
            );
            add(
                Postgres,
                "postgres/pg_hba.conf.jinja",
                "postgres/pg_hba.conf".into(),
                None,
            );
            add(
                Postgres,
                "postgres/network.conf.jinja",
                format!("postgres/{name}-network.conf"),
                None,
            );
            add(
                Postgres,
                "postgres/pg-dump.service.jinja",
                format!("postgres/{name}-pg-dump.service"),
                None,
            );
            add(
                Postgres,
                "postgres/pg-dump.timer.jinja",
                format!("postgres/{name}-pg-dump.timer"),
                None,
            );
        }
        add(
            Component::Nftables,
            "nftables/ruleset.nft.jinja",
            format!("nftables/{name}.nft"),
            None,
        );
        add(
            Component::Install,
            "install.sh.jinja",
            "install.sh".into(),
            Some(0o755),
        );
    }
}
