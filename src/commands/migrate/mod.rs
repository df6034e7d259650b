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

use crate::database::Target;
use crate::project::{Project, Selector};
use crate::settings::Settings;

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

impl DbArgs {
    pub fn target(&self) -> Result<Target> {
        let project = Project::load(&self.selector, false)?;
        let settings = Settings::load(&project)?;
        Target::resolve(
            self.database_url.as_deref(),
            self.migrations_dir.as_deref(),
            &settings,
            project.package_dir(),
        )
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
