//! `manage dbshell`: the database's own client on the configured
//! database, `sqlite3 FILE` or `psql`, in place of manage (exec).

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::DbArgs;
use crate::database::Kind;
use crate::error::hinted;
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage dbshell                          an interactive sqlite3 or psql
  manage dbshell -- -c 'SELECT 1'         arguments after `--` go to psql
  manage dbshell -- 'SELECT 1'            ... or to sqlite3

psql gets the password in PGPASSWORD, never on its command line.")]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,

    /// Arguments for the client, after `--`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let target = args.db.target()?;
    let (program, package) = match target.db.kind {
        Kind::Sqlite(_) => ("sqlite3", "sqlite3"),
        Kind::Postgres => ("psql", "postgresql-client"),
    };
    if !on_path(program) {
        return Err(hinted(
            format!("`{program}` is not installed (or not on PATH); dbshell runs it"),
            format!("install it, e.g. `apt-get install {package}` on Debian or Ubuntu"),
        ));
    }
    let mut cmd = Command::new(program);
    match &target.db.kind {
        Kind::Sqlite(file) => {
            let file = file.as_deref().map_or(":memory:".as_ref(), Path::as_os_str);
            cmd.arg(file);
        }
        Kind::Postgres => {
            let (url, password) = split_password(&target.db.url);
            if let Some(password) = password {
                cmd.env("PGPASSWORD", password);
            }
            cmd.arg(url);
        }
    }
    cmd.args(&args.args);
    ui.verbose("Running", format!("{program} on {}", target.db.redacted()));
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("cannot run `{program}`")))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            std::fs::metadata(&candidate).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// The URL without its password, and the password (percent-decoded).
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_owned(), None);
    };
    let password = percent_encoding::percent_decode_str(password)
        .decode_utf8_lossy()
        .into_owned();
    (format!("{scheme}://{user}@{host}{tail}"), Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        assert_eq!(
            split_password("postgres://app:p%40ss@db:5432/app"),
            (
                "postgres://app@db:5432/app".to_owned(),
                Some("p@ss".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://app@db/app"),
            ("postgres://app@db/app".to_owned(), None)
        );
    }
}
