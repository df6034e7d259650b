//! Which database a command talks to, and where that choice came from.
//!
//! The order is the app's own: `--database-url`, then `DATABASE_URL` in the
//! environment, then in the project's `.env`, then `database-url` in the
//! settings, then `sqlite:db.sqlite3`. A relative SQLite path is relative
//! to the package directory (where runserver runs the app), not to
//! wherever manage was started.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::hinted;

/// The app's default, as in the scaffold's `src/db.rs`.
pub const DEFAULT_URL: &str = "sqlite:db.sqlite3";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    DotEnv(PathBuf),
    Settings,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("--database-url"),
            Source::Env => f.write_str("DATABASE_URL in the environment"),
            Source::DotEnv(path) => write!(f, "DATABASE_URL in `{}`", path.display()),
            Source::Settings => f.write_str("database-url in [package.metadata.manage]"),
            Source::Default => f.write_str("the default"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The database file (`None` for `:memory:`).
    Sqlite(Option<PathBuf>),
    Postgres,
}

/// A resolved database URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// As sqlx takes it; SQLite paths made absolute.
    pub url: String,
    pub kind: Kind,
    pub source: Source,
}

/// Never the password, not even in debug output.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("url", &self.redacted())
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl DatabaseUrl {
    /// Resolves the URL for a project in `package_dir`.
    pub fn resolve(
        flag: Option<&str>,
        settings: Option<&str>,
        package_dir: &Path,
    ) -> Result<DatabaseUrl> {
        let dotenv = package_dir.join(".env");
        let (raw, source) = if let Some(url) = flag {
            (url.to_owned(), Source::Flag)
        } else if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            (url, Source::Env)
        } else if let Some(url) = from_dotenv(&dotenv)? {
            (url, Source::DotEnv(dotenv))
        } else if let Some(url) = settings {
            (url.to_owned(), Source::Settings)
        } else {
            (DEFAULT_URL.to_owned(), Source::Default)
        };
        parse(&raw, source, package_dir)
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }
}

fn from_dotenv(path: &Path) -> Result<Option<String>> {
    if !path.is_file() {
        return Ok(None);
    }
    let iter = dotenvy::from_path_iter(path).map_err(|err| {
        hinted(
            format!("cannot read `{}`: {err}", path.display()),
            "each line of .env is NAME=value",
        )
    })?;
    for item in iter {
        let (key, value) = item.map_err(|err| {
            hinted(
                format!("cannot parse `{}`: {err}", path.display()),
                "each line of .env is NAME=value; quote values with spaces",
            )
        })?;
        if key == "DATABASE_URL" && !value.is_empty() {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

fn parse(raw: &str, source: Source, package_dir: &Path) -> Result<DatabaseUrl> {
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        return Ok(DatabaseUrl {
            url: raw.to_owned(),
            kind: Kind::Postgres,
            source,
        });
    }
    let Some(rest) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    else {
        return Err(hinted(
            format!(
                "database URL `{}` (from {source}) is neither SQLite nor PostgreSQL",
                redact(raw)
            ),
            "use `sqlite:db.sqlite3` or `postgres://USER:PASSWORD@HOST/NAME`",
        ));
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path == ":memory:" || path.is_empty() {
        return Ok(DatabaseUrl {
            url: raw.to_owned(),
            kind: Kind::Sqlite(None),
            source,
        });
    }
    let file = package_dir.join(path);
    let mut url = format!("sqlite://{}", file.display());
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(DatabaseUrl {
        url,
        kind: Kind::Sqlite(Some(file)),
        source,
    })
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_relative_to_the_package() {
        let dir = Path::new("/srv/site");
        let url = parse("sqlite:db.sqlite3", Source::Default, dir).unwrap();
        assert_eq!(url.url, "sqlite:///srv/site/db.sqlite3");
        assert_eq!(url.kind, Kind::Sqlite(Some(dir.join("db.sqlite3"))));
        let url = parse("sqlite:///tmp/x.db?mode=rwc", Source::Flag, dir).unwrap();
        assert_eq!(url.url, "sqlite:///tmp/x.db?mode=rwc");
        assert!(parse("mysql://x", Source::Flag, dir).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cr@t@db:5432/app?sslmode=require"),
            "postgres://app:***@db:5432/app?sslmode=require"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("sqlite:db.sqlite3"), "sqlite:db.sqlite3");
    }
}
