//! Writing a rendered project: new files only, and on failure exactly
//! what this run created is removed again.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::render::OutputFile;
use crate::ui::Ui;

/// What this run created, so that a failure can remove exactly that.
#[derive(Default)]
pub struct Created {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Created {
    fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        for d in missing.into_iter().rev() {
            match fs::create_dir(&d) {
                Ok(()) => self.dirs.push(d),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create `{}`", d.display()))
                }
            }
        }
        Ok(())
    }

    fn write_new(&mut self, path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        self.files.push(path.to_path_buf());
        file.write_all(contents)
            .with_context(|| format!("cannot write `{}`", path.display()))
    }

    pub fn undo(self) {
        for f in self.files.iter().rev() {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

pub fn write_project(
    target: &Path,
    files: &[OutputFile],
    created: &mut Created,
    ui: &Ui,
) -> Result<()> {
    created.create_dir_all(target)?;
    for file in files {
        let path = target.join(&file.path);
        if let Some(parent) = path.parent() {
            created.create_dir_all(parent)?;
        }
        created.write_new(&path, &file.contents, file.mode)?;
        ui.verbose("Writing", path.display());
    }
    Ok(())
}
