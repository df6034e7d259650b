//! `manage collectstatic [--out DIR] [--clear] [--dry-run]` (issue #13).
//!
//! Django's collectstatic with ManifestStaticFilesStorage, for nginx: the
//! files of `static-dir` are copied to a build directory (`static-build-dir`,
//! default `target/staticfiles/`) under their plain names and under
//! content-hashed names (`css/site.3f2a1b4c5d6e.css`), references inside
//! CSS and source maps are rewritten to hashed names, `.gz` and `.br`
//! copies are made for nginx's `gzip_static`/`brotli_static`, and
//! `staticfiles.json` maps plain names to hashed ones for the app.
//!
//! The stages: `walk` (what the tree holds, refusing what it must not
//! copy), `plan` (what changed, hashes in dependency order, using `refs`
//! and `hashing`), `write` (atomic outputs, `compress`), with `state`
//! remembering the last run so that an unchanged tree is checked by its
//! stamps alone and nothing is written.

mod compress;
mod hashing;
mod plan;
mod refs;
mod state;
mod walk;
mod write;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result};
use rayon::prelude::*;

use crate::error::hinted;
use crate::project::{Project, Selector};
use crate::settings::Settings;
use crate::ui::Ui;

pub use state::MANIFEST;

/// From this many files on, a progress bar shows (on a terminal).
const LARGE: usize = 500;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage collectstatic                 writes target/staticfiles/ (or `static-build-dir`)
  manage collectstatic --dry-run       says what would be written, writes nothing
  manage collectstatic --clear         empties the output directory first

nginx serves the output at `static-url` (`manage deploy-config` sets it up;
ship the directory as deploy/static/). The app finds hashed names in
staticfiles.json there.")]
pub struct Args {
    #[command(flatten)]
    pub selector: Selector,

    /// Directory to write to [default: `static-build-dir`, else target/staticfiles]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Delete everything in the output directory before collecting
    #[arg(short, long)]
    pub clear: bool,

    /// Say what would be written; write and delete nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    compress::keep_buffers();
    let project = Project::load(&args.selector, false)?;
    let settings = Settings::load(&project)?;
    let inputs = Inputs::new(&project, &settings, args.out)?;
    let out_dir = &inputs.out_dir;
    let mut old = state::State::load(out_dir);
    if args.clear {
        clear(out_dir, args.dry_run, ui)?;
        old = state::State::default();
    }
    let sources = walk::walk(&inputs.static_dir)?;
    let plan = plan::plan(&sources, &inputs.static_url, &old, out_dir)?;
    for warning in &plan.warnings {
        ui.warn(warning);
    }
    let manifest = state::Manifest::new(plan.paths.clone()).to_bytes();
    let manifest_same = fs::read(out_dir.join(MANIFEST)).is_ok_and(|m| m == manifest);
    let (total, count) = (sources.len(), plan.jobs.len());
    if count == 0 && plan.stale.is_empty() && manifest_same {
        ui.status(
            "Fresh",
            format!(
                "{total} files in `{}` are up to date; nothing was written",
                out_dir.display()
            ),
        );
        return Ok(());
    }
    if args.dry_run {
        for job in &plan.jobs {
            ui.verbose("Would write", format!("{} ({})", job.rel, job.hashed));
        }
        for name in &plan.stale {
            ui.verbose("Would remove", name);
        }
        ui.status(
            "Dry run",
            format!(
                "would write {count} of {total} files into `{}` and remove {} stale; nothing was written",
                out_dir.display(),
                plan.stale.len()
            ),
        );
        return Ok(());
    }

    fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create `{}`", out_dir.display()))?;
    write::directories(out_dir, plan.jobs.iter().map(|j| j.rel.as_str()))?;
    let bar = (count >= LARGE).then(|| ui.bar(count as u64, "Collecting"));
    let (gz, br) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let done: Vec<(String, state::Entry)> = plan
        .jobs
        .into_par_iter()
        .map(|job| {
            let done = write::job(out_dir, job)?;
            gz.fetch_add(usize::from(done.gz), Ordering::Relaxed);
            br.fetch_add(usize::from(done.br), Ordering::Relaxed);
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            ui.verbose("Collected", &done.rel);
            Ok((done.rel, done.entry))
        })
        .collect::<Result<_>>()?;
    drop(bar);
    for name in &plan.stale {
        write::remove_if_present(&out_dir.join(name))?;
        ui.verbose("Removed", name);
    }
    let mut entries: BTreeMap<String, state::Entry> = plan.kept;
    entries.extend(done);
    write::write_atomic(&out_dir.join(MANIFEST), &manifest)?;
    write::write_atomic(
        &out_dir.join(state::STATE),
        &state::State::new(entries).to_bytes(),
    )?;
    ui.status(
        "Collected",
        format!(
            "{total} files into `{}`: {count} written ({} .gz, {} .br), {} unchanged{}",
            out_dir.display(),
            gz.into_inner(),
            br.into_inner(),
            total - count,
            match plan.stale.len() {
                0 => String::new(),
                n => format!(", {n} stale outputs removed"),
            }
        ),
    );
    Ok(())
}

/// The directories and URL prefix of a run, checked.
pub struct Inputs {
    pub static_dir: PathBuf,
    pub out_dir: PathBuf,
    pub static_url: String,
}

impl Inputs {
    pub fn new(project: &Project, settings: &Settings, out: Option<PathBuf>) -> Result<Inputs> {
        let static_url = settings.static_url().map_err(|e| {
            hinted(
                format!("invalid `static-url`: {e}"),
                "fix `static-url` in [package.metadata.manage]",
            )
        })?;
        let static_dir = settings.static_dir(project);
        let out_dir = absolute(&out.unwrap_or_else(|| settings.static_build_dir(project)))?;
        let canonical = fs::canonicalize(&static_dir).unwrap_or_else(|_| static_dir.clone());
        if out_dir.starts_with(&canonical) || canonical.starts_with(&out_dir) {
            return Err(hinted(
                format!(
                    "the output directory `{}` and the static directory `{}` overlap",
                    out_dir.display(),
                    static_dir.display()
                ),
                "collect into a directory of its own: set `static-build-dir` in \
                 [package.metadata.manage] or pass `--out` (the default is target/staticfiles)",
            ));
        }
        Ok(Inputs {
            static_dir,
            out_dir,
            static_url,
        })
    }
}

/// `path` made absolute with symlinks resolved as far as it exists, so
/// that overlap is judged on the real directories.
fn absolute(path: &Path) -> Result<PathBuf> {
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot resolve `{}`", path.display()))?;
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        match fs::canonicalize(existing) {
            Ok(real) => return Ok(rest.iter().rev().fold(real, |p, c| p.join(c))),
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => return Ok(path.clone()),
            },
        }
    }
}

/// `--clear`: empties the output directory, if collectstatic made it.
fn clear(out_dir: &Path, dry_run: bool, ui: &Ui) -> Result<()> {
    if !state::clearable(out_dir).with_context(|| format!("cannot read `{}`", out_dir.display()))? {
        return Err(hinted(
            format!(
                "refusing to clear `{}`: it holds files collectstatic did not write (no `{}`)",
                out_dir.display(),
                state::STATE
            ),
            "collect into a directory of its own with `--out` or `static-build-dir`, or empty it yourself",
        ));
    }
    let Ok(entries) = fs::read_dir(out_dir) else {
        return Ok(());
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read `{}`", out_dir.display()))?
            .path();
        removed += 1;
        if dry_run {
            continue;
        }
        // remove_dir_all does not follow symlinks; a symlink is removed itself.
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove `{}`", path.display()))?;
    }
    let verb = if dry_run { "Would clear" } else { "Cleared" };
    ui.status(
        verb,
        format!("{removed} entries in `{}`", out_dir.display()),
    );
    Ok(())
}

/// How the output directory compares with the static directory, for
/// `manage check --deploy`.
pub enum Freshness {
    /// No manifest at all.
    NotCollected,
    /// This many files (or stale outputs) would be written or removed.
    Stale(usize),
    Fresh,
}

/// Runs the planner without writing: what `collectstatic` would do now.
pub fn freshness(project: &Project, settings: &Settings) -> Result<(PathBuf, Freshness)> {
    let inputs = Inputs::new(project, settings, None)?;
    let out_dir = inputs.out_dir;
    if !out_dir.join(MANIFEST).is_file() {
        return Ok((out_dir, Freshness::NotCollected));
    }
    let sources = walk::walk(&inputs.static_dir)?;
    let plan = plan::plan(
        &sources,
        &inputs.static_url,
        &state::State::load(&out_dir),
        &out_dir,
    )?;
    let manifest = state::Manifest::new(plan.paths).to_bytes();
    let manifest_same = fs::read(out_dir.join(MANIFEST)).is_ok_and(|m| m == manifest);
    let pending = plan.jobs.len() + plan.stale.len() + usize::from(!manifest_same);
    let freshness = if pending == 0 {
        Freshness::Fresh
    } else {
        Freshness::Stale(pending)
    };
    Ok((out_dir, freshness))
}
