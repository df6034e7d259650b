//! `manage makemigrations NAME`: a new, empty migration in sqlx's naming,
//! `<UTC timestamp>_<name>.up.sql` and `.down.sql`. manage has no models
//! to diff (unlike Django), so the SQL is yours to write.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

use super::DbArgs;
use crate::error::hinted;
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage makemigrations add_users      migrations/20261127031500_add_users.up.sql and .down.sql

The version is the time in UTC (later than every existing migration). A
directory of simple migrations (`<version>_<name>.sql`, no down file) gets
one more of those, as sqlx requires one style per directory.")]
pub struct Args {
    /// What the migration does: letters, digits and `_`
    pub name: String,

    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    check_name(&args.name)?;
    let dir = args.db.target()?.migrations_dir;
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the migrations directory `{}`", dir.display()))?;
    let existing = existing(&dir)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut version = timestamp(now);
    // Two in one second, or a clock behind the newest: stay in order.
    if let Some(newest) = existing.versions.iter().max() {
        version = version.max(newest + 1);
    }
    let stem = format!("{version}_{}", args.name);
    let files: Vec<(PathBuf, String)> = if existing.simple_only {
        vec![(
            dir.join(format!("{stem}.sql")),
            format!("-- {}\n", args.name.replace('_', " ")),
        )]
    } else {
        vec![
            (
                dir.join(format!("{stem}.up.sql")),
                format!("-- {}\n", args.name.replace('_', " ")),
            ),
            (
                dir.join(format!("{stem}.down.sql")),
                format!("-- Undo {}\n", args.name.replace('_', " ")),
            ),
        ]
    };
    for (path, text) in &files {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        ui.status("Created", path.display());
    }
    ui.note("write the SQL, then apply it with `manage migrate`");
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(hinted(
            format!("`{name}` is not a migration name"),
            "use letters, digits and `_`, e.g. `manage makemigrations add_users`",
        ))
    }
}

struct Existing {
    versions: Vec<u64>,
    /// Only `<version>_<name>.sql` files, and at least one.
    simple_only: bool,
}

fn existing(dir: &Path) -> Result<Existing> {
    let mut versions = Vec::new();
    let (mut simple, mut reversible) = (0, 0);
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let name = entry
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let Some(version) = stem.split('_').next().and_then(|v| v.parse().ok()) else {
            continue;
        };
        versions.push(version);
        if stem.ends_with(".up") || stem.ends_with(".down") {
            reversible += 1;
        } else {
            simple += 1;
        }
    }
    Ok(Existing {
        versions,
        simple_only: simple > 0 && reversible == 0,
    })
}

/// `YYYYMMDDhhmmss` in UTC for a Unix time, as sqlx-cli names migrations.
fn timestamp(secs: u64) -> u64 {
    let t = crate::ui::Utc::from_unix(secs);
    let date = (t.year * 10_000 + t.month * 100 + t.day) as u64;
    date * 1_000_000 + t.hour * 10_000 + t.minute * 100 + t.second
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_time() {
        assert_eq!(timestamp(0), 19_700_101_000_000);
        // 2026-11-25 19:32:26 UTC
        assert_eq!(timestamp(1_795_635_146), 20_261_125_193_226);
        // 2024-02-29 23:59:59 UTC
        assert_eq!(timestamp(1_709_251_199), 20_240_229_235_959);
    }

    #[test]
    fn names_are_identifiers() {
        assert!(check_name("add_users2").is_ok());
        for bad in ["", "add users", "../x", "a-b", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
