//! `manage migrate`: applies the pending migrations, creating the SQLite
//! file if needed.

use anyhow::Result;

use super::{block_on, DbArgs};
use crate::database::{self, Migrations};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Applies every migration in the migrations directory that the database has
not seen, oldest first, each in a transaction, with sqlx (the same table,
checksums and lock as the migrations the generated app embeds). A migration changed
after it was applied stops everything before anything runs.")]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let target = args.db.target()?;
    block_on(async {
        let migrations = Migrations::load(&target.migrations_dir).await?;
        let spinner = ui.spinner(format!("connecting to {}", target.db.redacted()));
        let mut conn = database::connect(&target.db, true)
            .await?
            .expect("connect creates the SQLite file");
        spinner.set_message("applying migrations");
        let applied = migrations.apply(&mut conn).await;
        drop(spinner);
        conn.close().await;
        let applied = applied?;
        if applied.is_empty() {
            ui.status(
                "Fresh",
                format!("no migrations to apply ({})", target.db.redacted()),
            );
        }
        for name in &applied {
            ui.status("Applied", name);
        }
        Ok(())
    })?
}
