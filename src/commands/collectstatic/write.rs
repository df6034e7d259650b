//! Putting outputs on disk, only inside the output directory, never half
//! written.
//!
//! Every file is written to a temporary name in its directory and renamed
//! into place, so nginx (or install.sh) sees the old file or the new one,
//! never a part. The plain name and the `.gz`/`.br` of the plain name are
//! hard links to their hashed twins: one write, and a rename swaps them.
//! Directories are created one component at a time and each must be a real
//! directory: a symlink planted in the output tree (`css -> /etc`) is
//! refused rather than followed. Files are not fsynced: the output is
//! rebuilt from sources by the next run, and 40,000 fsyncs would cost more
//! than the whole collection.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};

use super::compress;
use super::plan::{Body, Job, MAX_TEXT};
use super::state::{Entry, Output};
use super::walk::Stamp;
use crate::error::hinted;
use crate::files::{open_regular, read_regular};

/// Creates every directory the outputs need, refusing symlinks and
/// non-directories on the way.
pub fn directories<'a>(out_dir: &Path, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for name in names {
        let mut at = 0;
        while let Some(slash) = name[at..].find('/') {
            at += slash;
            dirs.insert(&name[..at]);
            at += 1;
        }
    }
    // Sorted, so a parent comes before its children.
    for dir in dirs {
        let path = out_dir.join(dir);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(hinted(
                    format!(
                        "`{}` is {}, not a directory; collectstatic writes only inside `{}`",
                        path.display(),
                        crate::files::kind(&meta.file_type()),
                        out_dir.display()
                    ),
                    "remove it, or run again with `--clear` to rebuild the output directory",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create `{}`", path.display()))
                }
            },
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }
    Ok(())
}

/// What a job wrote: its state entry and the number of `.gz` and `.br`.
pub struct Done {
    pub rel: String,
    pub entry: Entry,
    pub gz: bool,
    pub br: bool,
}

/// Writes one source's outputs: hashed name, plain name, and the
/// compressed copies of both when they are worth it.
pub fn job(out_dir: &Path, job: Job) -> Result<Done> {
    let hashed_path = out_dir.join(&job.hashed);
    let text = match job.body {
        Body::Bytes(bytes) => {
            write_atomic(&hashed_path, &bytes)?;
            Some(bytes)
        }
        Body::File(path) if job.compress => {
            let bytes = read_regular(&path, MAX_TEXT)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            write_atomic(&hashed_path, &bytes)?;
            Some(bytes)
        }
        Body::File(path) => {
            copy_atomic(&path, &hashed_path)?;
            None
        }
    };
    link_atomic(&hashed_path, &out_dir.join(&job.rel))?;
    let mut names = vec![job.hashed.clone(), job.rel.clone()];
    let text = text.filter(|_| job.compress);
    let mut made = [false; 2];
    for (k, (ext, f)) in [
        ("gz", compress::gzip as fn(&[u8]) -> _),
        ("br", compress::brotli),
    ]
    .into_iter()
    .enumerate()
    {
        let hashed = format!("{}.{ext}", job.hashed);
        let plain = format!("{}.{ext}", job.rel);
        match text.as_deref().and_then(f) {
            Some(compressed) => {
                write_atomic(&out_dir.join(&hashed), &compressed)?;
                link_atomic(&out_dir.join(&hashed), &out_dir.join(&plain))?;
                names.extend([hashed, plain]);
                made[k] = true;
            }
            None => {
                // An older, now stale copy would be served instead of the file.
                remove_if_present(&out_dir.join(&plain))?;
                remove_if_present(&out_dir.join(&hashed))?;
            }
        }
    }
    let mut entry = job.entry;
    for name in names {
        let path = out_dir.join(&name);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let stamp = Stamp::of(&meta);
        entry.outputs.push(Output {
            name,
            size: stamp.size,
            mtime_ns: stamp.mtime_ns,
        });
    }
    Ok(Done {
        rel: job.rel,
        entry,
        gz: made[0],
        br: made[1],
    })
}

pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

fn temp_in(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().expect("an output has a directory");
    tempfile::Builder::new()
        .prefix(".manage-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot set the mode of `{}`", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace `{}`", path.display()))?;
    Ok(())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_in(path)?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", tmp.path().display()))?;
    persist(tmp, path)
}

fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let (mut source, _) =
        open_regular(from).with_context(|| format!("cannot read `{}`", from.display()))?;
    let mut tmp = temp_in(to)?;
    io::copy(&mut source, tmp.as_file_mut())
        .with_context(|| format!("cannot copy `{}` to `{}`", from.display(), to.display()))?;
    persist(tmp, to)
}

/// `to` becomes another name of `from`, atomically.
fn link_atomic(from: &Path, to: &Path) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = to.parent().expect("an output has a directory");
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".manage-link-{}-{n}", std::process::id()));
        match fs::hard_link(from, &tmp) {
            Ok(()) => {
                return fs::rename(&tmp, to).map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    anyhow::Error::new(e).context(format!("cannot replace `{}`", to.display()))
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot link `{}` to `{}`", from.display(), to.display())
                })
            }
        }
    }
}
