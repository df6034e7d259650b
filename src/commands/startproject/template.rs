//! Reading a user's `--template` directory.
//!
//! Everything is read into memory before anything is written, so what a
//! template may hold is bounded: regular files only (a FIFO would block,
//! a device never end), each at most [`MAX_FILE`] and together at most
//! [`MAX_TOTAL`]. Symlinks that lead outside the directory are refused;
//! `.git` is skipped; dot files are kept (unlike Django).

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::error::hinted;
use crate::files;
use crate::render::SourceFile;

/// Largest file a template may hold.
pub const MAX_FILE: u64 = 16 << 20;
/// Largest a template may be in all.
pub const MAX_TOTAL: u64 = 64 << 20;

pub fn read_dir(dir: &Path) -> Result<Vec<SourceFile>> {
    let root = fs::canonicalize(dir)
        .with_context(|| format!("cannot read template directory `{}`", dir.display()))?;
    if !root.is_dir() {
        return Err(hinted(
            format!("template `{}` is not a directory", dir.display()),
            "pass a directory of template files to `--template`",
        ));
    }
    let mut walk = Walk {
        root: &root,
        files: Vec::new(),
        total: 0,
    };
    walk.dir(&root)?;
    let mut files = walk.files;
    if files.is_empty() {
        bail!("template directory `{}` has no files", dir.display());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

struct Walk<'a> {
    root: &'a Path,
    files: Vec<SourceFile>,
    total: u64,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read `{}`", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                bail!("template file name `{}` is not UTF-8", path.display());
            };
            if name_str == ".git" {
                continue;
            }
            let rel = path
                .strip_prefix(self.root)
                .expect("walk stays below root")
                .to_string_lossy()
                .into_owned();
            let real = self.resolve(&path, &rel)?;
            let meta = fs::metadata(&real)
                .with_context(|| format!("cannot inspect `{}`", real.display()))?;
            if meta.is_dir() {
                self.dir(&path)?;
            } else {
                self.file(&real, rel)?;
            }
        }
        Ok(())
    }

    /// The path a template entry stands for: itself, or where its symlink
    /// leads if that stays inside the template.
    fn resolve(&self, path: &Path, rel: &str) -> Result<std::path::PathBuf> {
        let meta = fs::symlink_metadata(path)
            .with_context(|| format!("cannot inspect `{}`", path.display()))?;
        if !meta.file_type().is_symlink() {
            return Ok(path.to_owned());
        }
        let real = fs::canonicalize(path)
            .with_context(|| format!("template symlink `{}` is broken", path.display()))?;
        if !real.starts_with(self.root) {
            return Err(hinted(
                format!(
                    "template file `{rel}` is a symlink to `{}`, outside the template directory",
                    real.display()
                ),
                "replace the symlink with a copy of the file",
            ));
        }
        if real.is_dir() {
            bail!("template entry `{rel}` is a symlink to a directory; only files may be linked");
        }
        Ok(real)
    }

    fn file(&mut self, real: &Path, rel: String) -> Result<()> {
        let left = MAX_TOTAL - self.total;
        let contents = files::read_regular(real, MAX_FILE.min(left)).map_err(|err| {
            let fix = match err.kind() {
                std::io::ErrorKind::InvalidInput => {
                    "a template holds regular files only; remove it or replace it with a file"
                }
                std::io::ErrorKind::InvalidData if left < MAX_FILE => {
                    "templates are read into memory: keep the whole template under 64 MiB"
                }
                std::io::ErrorKind::InvalidData => {
                    "templates are read into memory: keep each file under 16 MiB"
                }
                _ => "check the file's permissions",
            };
            hinted(format!("template file `{rel}` {}", reason(&err)), fix)
        })?;
        self.total += contents.len() as u64;
        self.files.push(SourceFile {
            path: rel,
            contents,
            mode: file_mode(real),
        });
        Ok(())
    }
}

fn reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => err.to_string(),
        _ => format!("cannot be read: {err}"),
    }
}

fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}
