//! `manage startproject NAME [DIRECTORY] [--template DIR]`.
//!
//! Like Django's: validate the name, refuse a directory that is not empty,
//! render the template completely in memory, then write it. Files are
//! created with `O_EXCL` so nothing is ever overwritten, and a failure
//! half-way removes exactly what this run created.

mod name;
mod template;
mod write;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use minijinja::Value;

use crate::error::hinted;
use crate::render;
use crate::ui::Ui;
use write::{write_project, Created};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage startproject mysite             creates ./mysite
  manage startproject blog ~/code/blog   creates the project in ~/code/blog
  manage startproject shop --template ./my-template

Files in a --template directory whose names end in `.jinja` are rendered with
these variables, the suffix dropped: project_name, crate_name, unix_user,
db_name, manage_version, secret_key. File names may use them too. Other files are copied as they are.
A template holds regular files only, each under 16 MiB and 64 MiB in all.")]
pub struct Args {
    /// Name of the project: a cargo package name (letters, digits, `_`, `-`)
    pub name: String,

    /// Directory to create the project in [default: ./NAME]; must be empty or not exist
    pub directory: Option<PathBuf>,

    /// Render this template directory instead of the built-in one
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    name::validate(&args.name)?;
    let target = args
        .directory
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_target(&target)?;

    let sources = match &args.template {
        Some(dir) => template::read_dir(dir)?,
        None => render::embedded_tree("startproject")?,
    };
    let ctx = context(&args.name)?;
    let files = render::render_tree(&sources, &ctx).with_context(|| match &args.template {
        Some(dir) => format!("cannot render template `{}`", dir.display()),
        None => "cannot render the built-in template".to_owned(),
    })?;

    let mut created = Created::default();
    if let Err(err) = write_project(&target, &files, &mut created, ui) {
        created.undo();
        return Err(err.context(format!(
            "could not create project `{}` in `{}`; removed what was created",
            args.name,
            target.display()
        )));
    }

    ui.status(
        "Created",
        format!(
            "project `{}` in `{}` ({} files)",
            args.name,
            target.display(),
            files.len()
        ),
    );
    ui.info("");
    ui.info("Next steps:");
    ui.info(format!("  cd {}", shell_path(&target)));
    ui.info("  manage runserver          # develop at http://127.0.0.1:8000/");
    ui.info("  manage deploy-config      # nginx + systemd files for production");
    Ok(())
}

fn check_target(target: &Path) -> Result<()> {
    match fs::metadata(target) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => {
            Err(err).with_context(|| format!("cannot inspect destination `{}`", target.display()))
        }
        Ok(meta) if !meta.is_dir() => Err(hinted(
            format!(
                "destination `{}` already exists and is not a directory",
                target.display()
            ),
            "choose another name or directory",
        )),
        Ok(_) => {
            let mut entries = fs::read_dir(target)
                .with_context(|| format!("cannot read destination `{}`", target.display()))?;
            if entries.next().is_some() {
                Err(hinted(
                    format!("destination `{}` already exists and is not empty", target.display()),
                    "choose another name or directory, or empty this one first; nothing was changed",
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn context(name: &str) -> Result<Value> {
    Ok(minijinja::context! {
        project_name => name,
        crate_name => name.replace('-', "_"),
        unix_user => crate::names::account(name),
        db_name => crate::names::database(name),
        manage_version => env!("CARGO_PKG_VERSION"),
        secret_key => secret_key()?,
    })
}

/// 50 random characters, prefixed like Django's so that a development
/// secret is recognisable if it ever reaches production.
fn secret_key() -> Result<String> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@%^&*(-_=+)";
    let mut bytes = [0u8; 50];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for the secret key: {e}"))?;
    let key: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!("insecure-{key}"))
}

/// Quotes a path for the "next steps" lines when it needs it.
fn shell_path(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh() {
        let a = secret_key().unwrap();
        assert_eq!(a.len(), "insecure-".len() + 50);
        assert_ne!(a, secret_key().unwrap());
    }
}
