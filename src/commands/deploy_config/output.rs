//! Rendering the planned files, and putting them on disk.
//!
//! Writing is all or nothing in the sense that matters: every conflict is
//! found before the first write, and each file is replaced atomically (a
//! temporary file in the same directory, then rename), so a reader never
//! sees half a config.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use minijinja::Environment;

use super::context::Context;
use super::plan::{self, Planned, Root, View};
use crate::error::hinted;
use crate::render::{self, TEMPLATES};
use crate::ui::Ui;

/// A rendered file and where it goes.
#[derive(Debug, Clone)]
pub struct Placed {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: Option<u32>,
}

/// Where the roots of [`Root`] are on this machine.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `--out`, `deploy/` by default.
    pub out: PathBuf,
    /// The workspace root: the container build's context.
    pub workspace: PathBuf,
}

/// The environment for `templates/deploy/`, where templates may include
/// one another by their path below that directory.
fn environment() -> Environment<'static> {
    let mut env = render::environment();
    env.set_loader(|name| {
        Ok(TEMPLATES
            .get_file(format!("deploy/{name}"))
            .and_then(|f| f.contents_utf8())
            .map(str::to_owned))
    });
    env
}

/// Renders the planned files; every template error is reported at once.
pub fn render(ctx: &Context, files: &[Planned], roots: &Roots) -> Result<Vec<Placed>> {
    let env = environment();
    let base = serde_json::to_value(ctx).context("cannot serialise the template context")?;
    let containers = serde_json::to_value(ctx.in_containers())?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let mut value = match file.view {
            View::Containers => containers.clone(),
            View::Machine(_) | View::Environment(_) => base.clone(),
        };
        let host = match file.view {
            View::Machine(i) => i,
            View::Containers | View::Environment(_) => 0,
        };
        value["host"] = value["hosts"][host].clone();
        if let View::Environment(i) = file.view {
            value["environment"] = ctx.kubernetes.environments[i].clone().into();
        }
        let rendered = env
            .get_template(file.template)
            .and_then(|t| t.render(minijinja::Value::from_serialize(&value)));
        let root = match file.root {
            Root::Out => &roots.out,
            Root::Workspace => &roots.workspace,
        };
        match rendered {
            Ok(text) => out.push(Placed {
                path: root.join(render::safe_relative_path(&file.path)?),
                contents: text.into_bytes(),
                mode: file.mode,
            }),
            Err(err) => problems.push(format!("{}: {err:#}", file.template)),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the deploy templates have errors (a bug in manage):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(out)
}

/// How a generated file compares with the disk.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Missing,
    Same,
    Different(String),
}

fn state(path: &Path, contents: &[u8]) -> Result<State> {
    match fs::read(path) {
        Ok(old) if old == contents => Ok(State::Same),
        Ok(old) => Ok(State::Different(String::from_utf8_lossy(&old).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::Missing),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// The files under `out_dir` that differ from `files`, are missing, or
/// are no longer generated, without printing anything (`manage check`).
pub fn stale(out_dir: &Path, files: &[Placed]) -> Result<Vec<PathBuf>> {
    let mut stale = extra_files(out_dir, files)?;
    for file in files {
        let path = file.path.clone();
        if state(&path, &file.contents)? != State::Same {
            stale.push(path);
        }
    }
    Ok(stale)
}

/// `--check`: prints a unified diff for every file that would change and
/// fails if there is any.
pub fn check(out_dir: &Path, files: &[Placed], complete: bool, ui: &Ui) -> Result<()> {
    let mut stale = Vec::new();
    if complete {
        for extra in extra_files(out_dir, files)? {
            ui.out(&format!(
                "only on disk, no longer generated: {}\n",
                extra.display()
            ))?;
            stale.push(format!("`{}` (not generated)", extra.display()));
        }
    }
    for file in files {
        let path = file.path.clone();
        let new = String::from_utf8_lossy(&file.contents);
        let old = match state(&path, &file.contents)? {
            State::Same => continue,
            State::Missing => String::new(),
            State::Different(old) => old,
        };
        let shown = path.display().to_string();
        let diff = similar::TextDiff::from_lines(old.as_str(), new.as_ref());
        ui.out(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("{shown} (on disk)"),
                    &format!("{shown} (generated)"),
                )
                .to_string(),
        )?;
        stale.push(format!("`{shown}`"));
    }
    if stale.is_empty() {
        ui.status(
            "Checked",
            format!(
                "{} files in `{}` are up to date",
                files.len(),
                out_dir.display()
            ),
        );
        return Ok(());
    }
    Err(hinted(
        format!(
            "{} of {} files differ from what the settings generate: {}",
            stale.len(),
            files.len(),
            stale.join(", ")
        ),
        "run `manage deploy-config --force` to regenerate them, or change the settings",
    ))
}

/// Files in the directories deploy-config owns under `out_dir` (the kinds
/// of files and the machines, `nginx/` or `web-1/`) that the settings no
/// longer produce, after a change of layout or TLS mode; left there, they
/// would be copied to the machines. Other files (`--out .`) are not ours.
pub fn extra_files(out_dir: &Path, files: &[Placed]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries =
            fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read `{}`", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let entries = match fs::read_dir(out_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", out_dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read `{}`", out_dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && plan::owned_dir(name) {
            walk(&path, &mut found)?;
        }
    }
    let generated: std::collections::BTreeSet<PathBuf> =
        files.iter().map(|f| f.path.clone()).collect();
    found.retain(|p| !generated.contains(p));
    found.sort();
    Ok(found)
}

/// Writes the files. A file that exists with other contents is replaced
/// only with `force`; without it, nothing at all is written.
pub fn write(out_dir: &Path, files: &[Placed], force: bool, complete: bool, ui: &Ui) -> Result<()> {
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for file in files {
        let path = file.path.clone();
        match state(&path, &file.contents)? {
            State::Same => ui.verbose("Unchanged", path.display()),
            State::Missing => plan.push((path, file, "Writing")),
            State::Different(_) => {
                conflicts.push(format!("`{}`", path.display()));
                plan.push((path, file, "Replacing"));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(hinted(
            format!(
                "{} existing files differ from what would be generated: {}; nothing was written",
                conflicts.len(),
                conflicts.join(", ")
            ),
            "see the changes with `manage deploy-config --check`, then overwrite with `--force`",
        ));
    }
    for (path, file, verb) in &plan {
        write_atomic(path, &file.contents, file.mode)?;
        ui.status(verb, path.display());
    }
    if complete {
        for extra in extra_files(out_dir, files)? {
            ui.warn(format!(
                "`{}` is no longer generated by these settings; delete it so it is not deployed",
                extra.display()
            ));
        }
    }
    let unchanged = files.len() - plan.len();
    ui.status(
        "Finished",
        format!(
            "{} files in `{}` ({} written, {unchanged} unchanged); see `{}`",
            files.len(),
            out_dir.display(),
            plan.len(),
            out_dir.join("README.md").display()
        ),
    );
    Ok(())
}

fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".manage-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write `{}`", tmp.path().display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = mode.unwrap_or(0o644);
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of `{}`", tmp.path().display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace `{}`", path.display()))?;
    Ok(())
}
