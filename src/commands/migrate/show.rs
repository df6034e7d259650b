//! `manage showmigrations`: every migration, applied (`[X]`) or not
//! (`[ ]`), as Django prints them. Data, so it goes to stdout.

use anyhow::Result;

use super::{block_on, DbArgs};
use crate::database::{self, Migrations, State};
use crate::ui::{Tone, Ui};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lists the migrations directory against the database: [X] applied, [ ] pending,
[!] applied but changed since, [?] applied but without a file. Reading
creates nothing, not even the SQLite file. Exits 1 when an applied migration
was changed or is missing.")]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let target = args.db.target()?;
    let entries = block_on(async {
        let migrations = Migrations::load(&target.migrations_dir).await?;
        let mut conn = database::connect(&target.db, false).await?;
        let entries = migrations.status(conn.as_mut()).await;
        if let Some(conn) = conn {
            conn.close().await;
        }
        entries
    })??;
    let mut out = String::new();
    for entry in &entries {
        let (mark, note) = match entry.state {
            State::Applied => ("[X]", ""),
            State::Pending => ("[ ]", ""),
            State::Changed => ("[!]", "  (changed after it was applied)"),
            State::Missing => ("[?]", "  (applied, but no file)"),
        };
        out.push_str(&format!("{mark} {}{note}\n", entry.name));
    }
    if entries.is_empty() {
        out.push_str("(no migrations)\n");
    }
    ui.out(&out)?;
    let pending = entries.iter().filter(|e| e.state == State::Pending).count();
    if pending > 0 {
        ui.note(format!(
            "{} pending; apply with `{}`",
            ui.paint(pending, Tone::Warn),
            ui.bold("manage migrate")
        ));
    }
    database::check(&entries, &target.migrations_dir)
}
