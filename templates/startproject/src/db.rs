//! The database: SQLite in `db.sqlite3` by default, PostgreSQL (or another
//! SQLite file) when `DATABASE_URL` says so, through one code path: sqlx's
//! `Any` driver picks the driver from the URL at run time.
//!
//! Queries are plain SQL checked at run time (`sqlx::query`), not sqlx's
//! compile-time macros, so building needs no database. Migrations are the
//! files in `migrations/`, built into the binary by `build.rs` (no
//! proc-macro, so the drivers are compiled once); `manage migrate` applies
//! them in development, `NAME migrate` in production. Write SQL that both
//! databases run, or pick one.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, Migration, MigrationSource, MigrationType, Migrator};

/// Where the data lives when `DATABASE_URL` is not set: a file next to
/// where the app runs, created on first use (as Django's `db.sqlite3`).
pub const DEFAULT_URL: &str = "sqlite:db.sqlite3?mode=rwc";

/// `DATABASE_URL` (or [`DEFAULT_URL`]), with the password from systemd's
/// credential `db-password` when there is one: `manage deploy-config`
/// keeps the password out of the environment and the unit files
/// (`LoadCredential=`), so only this process can read it.
fn database_url() -> String {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return url;
    };
    match std::fs::read_to_string(std::path::Path::new(&dir).join("db-password")) {
        Ok(password) => with_password(&url, password.trim()),
        Err(_) => url,
    }
}

/// `postgres://user@host/db` -> `postgres://user:PASSWORD@host/db`.
fn with_password(url: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((user, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    let user = user.split(':').next().unwrap_or(user);
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{scheme}://{user}:{encoded}@{host}")
}

/// The files of `migrations/` as `(file name, SQL)`, sorted by name:
/// written by build.rs, which checked the names.
const MIGRATIONS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The embedded migrations, read as sqlx reads a `migrations/` directory:
/// `<version>_<name>.up.sql`, `.down.sql` or `.sql`; `-- no-transaction`
/// on the first line runs one outside a transaction.
#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async { Ok(embedded()?) })
    }
}

fn embedded() -> Result<Vec<Migration>, String> {
    MIGRATIONS
        .iter()
        .map(|&(name, sql)| {
            let (version, rest) = name
                .split_once('_')
                .ok_or_else(|| format!("migration `{name}` is not named <version>_<name>.sql"))?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("migration `{name}`: `{version}` is not a version number"))?;
            let kind = MigrationType::from_filename(rest);
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            let no_tx = sql.starts_with("-- no-transaction");
            Ok(Migration::new(
                version,
                Cow::Owned(description),
                kind,
                Cow::Borrowed(sql),
                no_tx,
            ))
        })
        .collect()
}

/// A pool of connections, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: &'static str,
}

impl Db {
    /// A pool for `DATABASE_URL` (or [`DEFAULT_URL`]). It connects on first
    /// use, so the app starts while the database is down.
    pub fn from_env() -> Result<Db, sqlx::Error> {
        Db::connect(&database_url())
    }

    /// A pool for `url`, connecting on first use.
    pub fn connect(url: &str) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("postgres") {
            "postgresql"
        } else {
            "sqlite"
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == "sqlite" { 1 } else { 8 })
            // A request waits this long for the database, then fails.
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url)?;
        Ok(Db { pool, kind })
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// True when the database answers a query.
    pub async fn is_ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Applies the embedded migrations not applied yet; returns their names.
    /// On PostgreSQL each runs in a transaction, and an advisory lock keeps
    /// two processes from migrating at once.
    pub async fn migrate(&self) -> Result<Vec<String>, sqlx::migrate::MigrateError> {
        let mut conn = self.pool.acquire().await?;
        // Held while the pending ones are listed and applied, so that two
        // processes never both report the same migration as theirs.
        conn.lock().await?;
        conn.ensure_migrations_table().await?;
        let applied: Vec<i64> = conn
            .list_applied_migrations()
            .await?
            .iter()
            .map(|m| m.version)
            .collect();
        let migrator = Migrator::new(Embedded).await?;
        let pending = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| format!("{}_{}", m.version, m.description.replace(' ', "_")))
            .collect();
        migrator.run(&mut *conn).await?;
        conn.unlock().await?;
        Ok(pending)
    }

    /// The newest notes first.
    pub async fn notes(&self, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_as::<_, (String,)>("SELECT body FROM notes ORDER BY created_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map(|rows| rows.into_iter().map(|(body,)| body).collect())
    }

    pub async fn add_note(&self, body: &str) -> Result<(), sqlx::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        sqlx::query("INSERT INTO notes (body, created_at) VALUES ($1, $2)")
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{embedded, with_password};

    #[test]
    fn the_embedded_migrations_are_read_as_sqlx_reads_the_directory() {
        let migrations = embedded().unwrap();
        assert!(!migrations.is_empty());
        for m in &migrations {
            assert!(m.version > 0);
            assert!(!m.description.contains('_'), "{}", m.description);
        }
        assert!(
            migrations
                .iter()
                .any(|m| m.migration_type.is_up_migration())
        );
    }

    #[test]
    fn the_credential_becomes_the_password() {
        assert_eq!(
            with_password(
                "postgres://app@10.0.0.30:5432/app?sslmode=require",
                "p@ss w"
            ),
            "postgres://app:p%40ss%20w@10.0.0.30:5432/app?sslmode=require"
        );
        assert_eq!(with_password("sqlite:db.sqlite3", "x"), "sqlite:db.sqlite3");
    }
}
