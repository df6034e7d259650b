//! The source tree: every regular file under `static-dir`, found without
//! trusting what the tree holds.
//!
//! A FIFO would block the read that copies it and a device could be
//! endless, so anything but a regular file is refused by name. A symlink is
//! followed only to a regular file inside `static-dir` (checked on its
//! canonical target): one leading out of the tree would publish whatever
//! it names (`/etc/passwd`, a private key) at a public URL. Dot files and
//! directories (`.git`, `.env`) are skipped, as nginx never serves them.
//! Every problem is reported together, before anything is written.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::hinted;

/// One file of the tree.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path below `static-dir`, `/`-separated: the name in the manifest.
    pub rel: String,
    /// Where to read it (a symlink's canonical target).
    pub path: PathBuf,
    pub stamp: Stamp,
}

/// What tells a file unchanged without reading it: size, times (ctime
/// moves on every write and cannot be set back) and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// The files under `root` (which must be a directory), sorted by `rel`.
pub fn walk(root: &Path) -> Result<Vec<Source>> {
    let canonical = fs::canonicalize(root).with_context(|| crate::error::Hint {
        message: format!("the static directory `{}` does not exist", root.display()),
        hint: "create it, or point `static-dir` in [package.metadata.manage] at your static files"
            .into(),
    })?;
    if !canonical.is_dir() {
        return Err(hinted(
            format!(
                "the static directory `{}` is not a directory",
                root.display()
            ),
            "point `static-dir` in [package.metadata.manage] at a directory",
        ));
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut dirs = vec![(canonical.clone(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read `{}`", dir.display()))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                problems.push(format!(
                    "`{}`: the name is not UTF-8, so no URL can name it",
                    path.display()
                ));
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                dirs.push((path, format!("{rel}/")));
            } else if ft.is_file() {
                found.push(Source {
                    rel,
                    path,
                    stamp: Stamp::of(&meta),
                });
            } else if ft.is_symlink() {
                match symlink(&canonical, &path) {
                    Ok((target, meta)) => found.push(Source {
                        rel,
                        path: target,
                        stamp: Stamp::of(&meta),
                    }),
                    Err(why) => problems.push(format!("`{rel}` {why}")),
                }
            } else {
                problems.push(format!("`{rel}` is {}", crate::files::kind(&ft)));
            }
        }
    }
    if !problems.is_empty() {
        return Err(hinted(
            format!(
                "{} file{} in `{}` cannot be collected; nothing was written:\n  {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                root.display(),
                problems.join("\n  ")
            ),
            "collectstatic copies regular files (and symlinks to regular files inside the static \
             directory) only; remove or replace the others",
        ));
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(found)
}

/// A symlink's target, if it is a regular file inside `root`.
fn symlink(root: &Path, link: &Path) -> Result<(PathBuf, fs::Metadata), String> {
    let target = fs::canonicalize(link).map_err(|e| format!("is a broken symlink ({e})"))?;
    if !target.starts_with(root) {
        return Err(format!(
            "is a symlink to `{}`, outside the static directory; it would publish that file",
            target.display()
        ));
    }
    let meta = fs::metadata(&target).map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err(format!(
            "is a symlink to {}; only symlinks to regular files are followed",
            crate::files::kind(&meta.file_type())
        ));
    }
    Ok((target, meta))
}
