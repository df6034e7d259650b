//! The project's database, for `migrate`, `showmigrations`, `dbshell` and
//! runserver's pending-migration check.
//!
//! Migrations are sqlx's: manage reads the directory with sqlx's own
//! `Migrator` and applies with it, so checksums, the `_sqlx_migrations`
//! table, the advisory lock on PostgreSQL and the one-transaction-per-
//! migration rule are exactly those of the migrations the generated app embeds,
//! and any sqlx-style directory works. Only the connection is ours: SQLite
//! or PostgreSQL, chosen by the URL ([`url`]).

pub mod url;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection as _, PgConnection, SqliteConnection};

pub use self::url::{DatabaseUrl, Kind};
use crate::error::hinted;
use crate::settings::Settings;

/// The directory of migrations when `migrations-dir` is not set (sqlx's).
pub const DEFAULT_MIGRATIONS_DIR: &str = "migrations";

/// What the database commands (and runserver's check) work on.
#[derive(Debug, Clone)]
pub struct Target {
    pub db: DatabaseUrl,
    pub migrations_dir: PathBuf,
}

impl Target {
    /// Flags first, then the environment, `.env` and the settings (see
    /// [`url`]); the migrations directory is relative to the package.
    pub fn resolve(
        url_flag: Option<&str>,
        dir_flag: Option<&Path>,
        settings: &Settings,
        package_dir: &Path,
    ) -> Result<Target> {
        let db = DatabaseUrl::resolve(url_flag, settings.database_url.as_deref(), package_dir)?;
        let migrations_dir = match dir_flag {
            Some(path) => path.to_path_buf(),
            None => package_dir.join(
                settings
                    .migrations_dir
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_MIGRATIONS_DIR)),
            ),
        };
        Ok(Target { db, migrations_dir })
    }
}

/// How long a connection attempt may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection to either database.
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$c` bound to the connection, whichever it is.
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

/// Connects. A SQLite file that does not exist is created with `create`,
/// and is `None` without it (nothing can have been applied to it).
pub async fn connect(db: &DatabaseUrl, create: bool) -> Result<Option<Conn>> {
    let unreachable = |err: String| {
        hinted(
            format!(
                "cannot connect to the database `{}` (from {}): {err}",
                db.redacted(),
                db.source
            ),
            match db.kind {
                Kind::Postgres => "start PostgreSQL, or check the host, port, user, password and database name in the URL",
                Kind::Sqlite(_) => "check that the file's directory exists and is writable",
            },
        )
    };
    let attempt = async {
        match &db.kind {
            Kind::Sqlite(file) => {
                if !create && file.as_ref().is_some_and(|f| !f.exists()) {
                    return Ok(None);
                }
                let options = SqliteConnectOptions::from_str(&db.url)
                    .map_err(|e| unreachable(e.to_string()))?
                    .create_if_missing(create);
                let conn = options
                    .connect()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                Ok(Some(Conn::Sqlite(conn)))
            }
            Kind::Postgres => {
                let options =
                    PgConnectOptions::from_str(&db.url).map_err(|e| unreachable(e.to_string()))?;
                let conn = options
                    .connect()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                Ok(Some(Conn::Postgres(conn)))
            }
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

impl Conn {
    pub async fn close(self) {
        let _ = with_conn!(self, c => c.close().await);
    }
}

/// A migrations directory, read by sqlx.
pub struct Migrations {
    pub dir: PathBuf,
    migrator: Migrator,
}

/// One migration and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: i64,
    /// `<version>_<name>`, as the file is called.
    pub name: String,
    pub state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file changed since (checksum mismatch).
    Changed,
    /// Applied, but no file has its version.
    Missing,
}

impl Migrations {
    pub async fn load(dir: &Path) -> Result<Migrations> {
        if !dir.is_dir() {
            return Err(hinted(
                format!("there is no migrations directory `{}`", dir.display()),
                "create the first migration with `manage makemigrations NAME`, or name the \
                 directory with `--migrations-dir` (`migrations-dir` in the settings)",
            ));
        }
        let migrator = Migrator::new(dir.to_path_buf()).await.map_err(|err| {
            hinted(
                format!("cannot read the migrations in `{}`: {err}", dir.display()),
                "migration files are named `<version>_<name>.sql`, or `.up.sql` and `.down.sql`",
            )
        })?;
        Ok(Migrations {
            dir: dir.to_path_buf(),
            migrator,
        })
    }

    fn name(&self, version: i64) -> String {
        self.migrator
            .iter()
            .find(|m| m.version == version)
            .map_or_else(
                || version.to_string(),
                |m| format!("{}_{}", m.version, m.description.replace(' ', "_")),
            )
    }

    /// Every migration in the directory or the database, oldest first.
    /// `conn` is `None` for a SQLite file that does not exist yet.
    pub async fn status(&self, conn: Option<&mut Conn>) -> Result<Vec<Entry>> {
        let applied = match conn {
            Some(conn) => applied(conn).await?,
            None => Vec::new(),
        };
        let mut entries: Vec<Entry> = self
            .migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| {
                let state = match applied.iter().find(|(v, _)| *v == m.version) {
                    Some((_, sum)) if *sum != *m.checksum => State::Changed,
                    Some(_) => State::Applied,
                    None => State::Pending,
                };
                Entry {
                    version: m.version,
                    name: self.name(m.version),
                    state,
                }
            })
            .collect();
        for (version, _) in &applied {
            if !entries.iter().any(|e| e.version == *version) {
                entries.push(Entry {
                    version: *version,
                    name: version.to_string(),
                    state: State::Missing,
                });
            }
        }
        entries.sort_by_key(|e| e.version);
        Ok(entries)
    }

    /// Applies what is pending; returns the names applied. Each migration
    /// runs in a transaction (unless its file starts with
    /// `-- no-transaction`), so one that fails leaves nothing of itself.
    pub async fn apply(&self, conn: &mut Conn) -> Result<Vec<String>> {
        let before = self.status(Some(conn)).await?;
        check(&before, &self.dir)?;
        // `run_direct` is `run` on a connection: `run`'s `Acquire` bound
        // makes futures that are not `Send` for runserver's tasks.
        let result = with_conn!(conn, c => self.migrator.run_direct(c).await);
        let after = self.status(Some(conn)).await?;
        let applied: Vec<String> = after
            .iter()
            .filter(|e| e.state == State::Applied)
            .filter(|e| {
                before
                    .iter()
                    .any(|b| b.version == e.version && b.state == State::Pending)
            })
            .map(|e| e.name.clone())
            .collect();
        result.map_err(|err| self.explain(err))?;
        Ok(applied)
    }

    fn explain(&self, err: MigrateError) -> anyhow::Error {
        match err {
            MigrateError::ExecuteMigration(db_err, version) => hinted(
                format!(
                    "migration `{}` failed: {}",
                    self.name(version),
                    db_message(&db_err)
                ),
                "fix the migration's SQL and run `manage migrate` again; on PostgreSQL and \
                 SQLite nothing of it was applied (it ran in a transaction)",
            ),
            MigrateError::Dirty(version) => hinted(
                format!("migration `{}` is partially applied", self.name(version)),
                "it ran without a transaction and failed: repair the schema by hand, then \
                 delete its row from `_sqlx_migrations`",
            ),
            other => anyhow::Error::new(other).context("cannot apply the migrations"),
        }
    }
}

/// Refuses to go on when an applied migration was edited or removed.
pub fn check(entries: &[Entry], dir: &Path) -> Result<()> {
    if let Some(e) = entries.iter().find(|e| e.state == State::Changed) {
        return Err(hinted(
            format!(
                "migration `{}` was changed after it was applied (its checksum differs from \
                 the one recorded in the database)",
                e.name
            ),
            "put the file back as it was and make the change in a new migration: \
             `manage makemigrations NAME`",
        ));
    }
    if let Some(e) = entries.iter().find(|e| e.state == State::Missing) {
        return Err(hinted(
            format!(
                "migration {} was applied to the database but has no file in `{}`",
                e.version,
                dir.display()
            ),
            "restore the file (from version control), or point `--migrations-dir` at the right directory",
        ));
    }
    Ok(())
}

/// The database's own message, without sqlx's wrapping.
fn db_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// (version, checksum) of the applied migrations; none when sqlx's table
/// does not exist (reading never creates it).
async fn applied(conn: &mut Conn) -> Result<Vec<(i64, Vec<u8>)>> {
    let exists: i64 = match conn {
        Conn::Sqlite(c) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *c)
        .await,
        Conn::Postgres(c) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_catalog.pg_tables \
             WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema()",
            )
            .fetch_one(&mut *c)
            .await
        }
    }
    .context("cannot read the database's tables")?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let list = with_conn!(conn, c => c.list_applied_migrations().await)
        .context("cannot read `_sqlx_migrations`")?;
    Ok(list
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect())
}
