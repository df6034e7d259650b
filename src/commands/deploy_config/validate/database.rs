//! The database the app uses in production: SQLite in the service's state
//! directory, or PostgreSQL (on the db machine of the three-machine
//! layout, or on the one machine), with its role, name and the URL the
//! app gets. The password is never part of the URL: install.sh keeps it
//! in a root-only file that systemd hands the app as a credential.

use std::net::IpAddr;

use super::super::checks::*;
use super::super::context::Db;
use super::super::settings::Settings;
use super::layout::socket_host;

/// `db` is the db machine's address in the three-machine layout.
pub fn database(
    p: &mut Problems,
    s: &Settings,
    name: &str,
    crate_name: &str,
    port: u16,
    db: Option<IpAddr>,
    env_dir: &str,
) -> Db {
    let default = crate::names::database(crate_name);
    let db_name = sql_ident(p, "db-name", s.db_name.as_deref().unwrap_or(&default));
    let user = sql_ident(p, "db-user", s.db_user.as_deref().unwrap_or(&default));
    let topology = s.topology.is_some();
    let postgres = match s.database.as_deref() {
        None => topology,
        Some("postgres") => true,
        Some("sqlite") if topology => {
            p.add(
                "database",
                "sqlite",
                "the three-machine layout keeps its data on the db machine: use `postgres`",
            );
            false
        }
        Some("sqlite") => false,
        Some(other) => {
            p.add("database", other, "is `sqlite` or `postgres`");
            false
        }
    };
    let (db_name, user) = (db_name.unwrap_or_default(), user.unwrap_or_default());
    let url = if !postgres {
        // StateDirectory= of the units: writable, kept across restarts.
        format!("sqlite:///var/lib/{name}/db.sqlite3?mode=rwc")
    } else {
        match db {
            // Across machines: TLS (pg_hba.conf has only hostssl lines).
            Some(ip) => format!(
                "postgres://{user}@{}:{port}/{db_name}?sslmode=require",
                socket_host(&ip.to_string())
            ),
            None => format!("postgres://{user}@127.0.0.1:{port}/{db_name}"),
        }
    };
    Db {
        port,
        name: db_name,
        user,
        postgres,
        local: postgres && !topology,
        url,
        password_file: format!("{env_dir}/db-password"),
    }
}
