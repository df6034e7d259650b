//! `manage startproject NAME [DIRECTORY] [--template DIR]`.
//!
//! Like Django's: validate the name, refuse a directory that is not empty,
//! render the template completely in memory, then write it. Files are
//! created with `O_EXCL` so nothing is ever overwritten, and a failure
//! half-way removes exactly what this run created.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use minijinja::Value;

use crate::error::hinted;
use crate::render::{self, OutputFile, SourceFile};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage startproject mysite             creates ./mysite
  manage startproject blog ~/code/blog   creates the project in ~/code/blog
  manage startproject shop --template ./my-template

Files in a --template directory whose names end in `.jinja` are rendered with
these variables, the suffix dropped: project_name, crate_name, manage_version,
secret_key. File names may use them too. Other files are copied as they are.")]
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
    validate_name(&args.name)?;
    let target = args
        .directory
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_target(&target)?;

    let sources = match &args.template {
        Some(dir) => read_template_dir(dir)?,
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

/// Names cargo and crates.io accept, refused with the reason.
pub fn validate_name(name: &str) -> Result<()> {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    const RESERVED: &[&str] = &["std", "core", "alloc", "proc_macro", "test"];
    // Cargo refuses these as binary names: they collide with its own
    // directories in `target/`.
    const CARGO_DIRS: &[&str] = &["build", "deps", "examples", "incremental"];
    const WINDOWS: &[&str] = &[
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
        "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    let fix = "choose a name like `mysite` or `my-blog`: ASCII letters, digits, `_` and `-`, starting with a letter";

    if name.is_empty() {
        return Err(hinted("the project name cannot be empty", fix));
    }
    if name.len() > 64 {
        return Err(hinted(
            format!(
                "the project name is {} characters long; crates.io allows at most 64",
                name.len()
            ),
            "choose a shorter name",
        ));
    }
    let first = name.chars().next().unwrap_or_default();
    if !first.is_ascii_alphabetic() {
        return Err(hinted(
            format!(
                "`{}` is not a valid project name: it must start with an ASCII letter, not `{}`",
                name.escape_debug(),
                first.escape_debug()
            ),
            fix,
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(hinted(
            format!(
                "`{}` is not a valid project name: `{}` is not allowed",
                name.escape_debug(),
                bad.escape_debug()
            ),
            fix,
        ));
    }
    let ident = name.replace('-', "_");
    if KEYWORDS.contains(&ident.as_str()) || ident == "Self" {
        return Err(hinted(
            format!("`{name}` is a Rust keyword and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if RESERVED.contains(&ident.as_str()) {
        return Err(hinted(
            format!("`{name}` is the name of a Rust standard library crate and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if CARGO_DIRS.contains(&name) {
        return Err(hinted(
            format!("`{name}` conflicts with cargo's build directory names and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if WINDOWS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(hinted(
            format!("`{name}` is a reserved file name on Windows and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
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

/// Reads a user's template directory. Symlinks that lead outside it are
/// refused; `.git` is skipped; dot files are kept (unlike Django).
fn read_template_dir(dir: &Path) -> Result<Vec<SourceFile>> {
    let root = fs::canonicalize(dir)
        .with_context(|| format!("cannot read template directory `{}`", dir.display()))?;
    if !root.is_dir() {
        return Err(hinted(
            format!("template `{}` is not a directory", dir.display()),
            "pass a directory of template files to `--template`",
        ));
    }
    let mut files = Vec::new();
    walk_template(&root, &root, &mut files)?;
    if files.is_empty() {
        bail!("template directory `{}` has no files", dir.display());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn walk_template(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> Result<()> {
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
            .strip_prefix(root)
            .expect("walk stays below root")
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot inspect `{}`", path.display()))?;
        let real = if meta.file_type().is_symlink() {
            let real = fs::canonicalize(&path)
                .with_context(|| format!("template symlink `{}` is broken", path.display()))?;
            if !real.starts_with(root) {
                return Err(hinted(
                    format!(
                        "template file `{rel}` is a symlink to `{}`, outside the template directory",
                        real.display()
                    ),
                    "replace the symlink with a copy of the file",
                ));
            }
            if real.is_dir() {
                bail!(
                    "template entry `{rel}` is a symlink to a directory; only files may be linked"
                );
            }
            real
        } else {
            path.clone()
        };
        if fs::metadata(&real)?.is_dir() {
            walk_template(root, &path, out)?;
        } else {
            let contents =
                fs::read(&real).with_context(|| format!("cannot read `{}`", real.display()))?;
            out.push(SourceFile {
                path: rel,
                contents,
                mode: file_mode(&real),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> Option<u32> {
    None
}

/// What this run created, so that a failure can remove exactly that.
#[derive(Default)]
struct Created {
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

    fn undo(self) {
        for f in self.files.iter().rev() {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

fn write_project(
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
    fn names() {
        for ok in [
            "mysite",
            "my-site",
            "my_site",
            "a",
            "Blog2",
            &"a".repeat(64),
        ] {
            validate_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "1site",
            "-x",
            "_x",
            "my site",
            "my.site",
            "fn",
            "self",
            "Self",
            "std",
            "proc_macro",
            "proc-macro",
            "test",
            "build",
            "con",
            "naïve",
            &"a".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn secrets_are_fresh() {
        let a = secret_key().unwrap();
        assert_eq!(a.len(), "insecure-".len() + 50);
        assert_ne!(a, secret_key().unwrap());
    }
}
