//! The database commands, as Django's: `migrate` ([`apply`]),
//! `makemigrations` ([`make`]), `showmigrations` ([`show`]) and `dbshell`
//! ([`shell`]). They share how the project, its database and its
//! migrations directory are found ([`Target`]); the database work itself
//! is in the crate's `database` module, which runserver uses too.

pub mod apply;
pub mod make;
pub mod shell;
pub mod show;

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::database::DatabaseUrl;
use crate::project::{Project, Selector};
use crate::settings::Settings;

/// The directory of migrations when `migrations-dir` is not set (sqlx's).
pub const DEFAULT_MIGRATIONS_DIR: &str = "migrations";

/// Options every database command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DbArgs {
    #[command(flatten)]
    pub selector: Selector,

    /// The database [default: DATABASE_URL from the environment or the project's .env, then `database-url`, then sqlite:db.sqlite3]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// The sqlx-style migrations directory [default: `migrations-dir`, then migrations/ next to Cargo.toml]
    #[arg(long, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
}

/// What a database command works on.
pub struct Target {
    pub db: DatabaseUrl,
    pub migrations_dir: PathBuf,
}

impl DbArgs {
    pub fn target(&self) -> Result<Target> {
        let project = Project::load(&self.selector, false)?;
        let settings = Settings::load(&project)?;
        let dir = project.package_dir();
        let db = DatabaseUrl::resolve(
            self.database_url.as_deref(),
            settings.database_url.as_deref(),
            dir,
        )?;
        let migrations_dir = match &self.migrations_dir {
            Some(path) => path.clone(),
            None => dir.join(
                settings
                    .migrations_dir
                    .unwrap_or_else(|| DEFAULT_MIGRATIONS_DIR.into()),
            ),
        };
        Ok(Target { db, migrations_dir })
    }
}

/// A current-thread runtime for one command's database work.
pub fn block_on<F: std::future::Future>(work: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(work))
}
