//! The database: SQLite in `db.sqlite3` by default, PostgreSQL (or another
//! SQLite file) when `DATABASE_URL` says so, through one code path: sqlx's
//! `Any` driver picks the driver from the URL at run time.
//!
//! Queries are plain SQL checked at run time (`sqlx::query`), not sqlx's
//! compile-time macros, so building needs no database. Migrations are the
//! files in `migrations/`, built into the binary by `sqlx::migrate!`;
//! `manage migrate` applies them in development, `NAME migrate` in
//! production. Write SQL that both databases run, or pick one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::AnyPool;

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

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

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
        sqlx::any::install_default_drivers();
        let url = database_url();
        let kind = if url.starts_with("postgres") {
            "postgresql"
        } else {
            "sqlite"
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == "sqlite" { 1 } else { 8 })
            // A request waits this long for the database, then fails.
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(&url)?;
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
        let pending = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| format!("{}_{}", m.version, m.description.replace(' ', "_")))
            .collect();
        MIGRATOR.run(&mut *conn).await?;
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
    use super::with_password;

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
