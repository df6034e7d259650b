//! The checks of plain `manage check`: the project can be read, has a
//! binary, and every setting has the right type and value. Errors all:
//! each one breaks a command.

use super::message::Message;
use crate::commands::{collectstatic, deploy_config};
use crate::project::Project;
use crate::settings::Settings;

const SETTINGS: &str = "[package.metadata.manage]";
const DEPLOY: &str = "[package.metadata.manage.deploy]";

/// E001: no project at all (nothing else can be checked).
pub fn unreadable(err: &anyhow::Error) -> Message {
    Message::new(
        "manage.E001",
        format!("the cargo project cannot be read: {err:#}"),
        "every manage command starts from Cargo.toml (through `cargo metadata`)",
        "run manage inside a cargo project, or pass `--manifest-path path/to/Cargo.toml`",
    )
}

/// E002: the settings table does not parse (nothing else can be checked).
pub fn bad_settings(err: &anyhow::Error) -> Message {
    Message::new(
        "manage.E002",
        format!("{err:#}"),
        "every command reads the same settings and refuses a misspelt key or a wrong type",
        format!("fix the key in {SETTINGS}; `manage check` names it"),
    )
}

pub fn checks(
    project: &Project,
    settings: &Settings,
    review: &deploy_config::Review,
    out: &mut Vec<Message>,
) {
    let manifest = project.manifest_path().display();
    if !project.package().targets.iter().any(|t| t.is_bin()) {
        out.push(Message::new(
            "manage.E003",
            format!("package `{}` has no binary target", project.package().name),
            "runserver runs it and deploy-config installs it; a library alone cannot serve",
            format!("add `src/main.rs` (or a [[bin]] section) to `{manifest}`"),
        ));
    }
    let static_dir = settings.static_dir(project);
    if !static_dir.is_dir() {
        out.push(Message::new(
            "manage.E004",
            format!(
                "the static directory `{}` does not exist or is not a directory",
                static_dir.display()
            ),
            "runserver serves it in development and collectstatic collects it for nginx",
            format!("create it, or set `static-dir` in {SETTINGS}"),
        ));
    }
    if let Some(path) = settings
        .health_path
        .as_deref()
        .filter(|p| !p.starts_with('/'))
    {
        out.push(Message::new(
            "manage.E005",
            format!("`health-path` = `{path}` does not start with `/`"),
            "runserver and install.sh ask this path before they send traffic to a new instance",
            format!("set `health-path` in {SETTINGS} to a path like `/healthz`"),
        ));
    }
    match settings.static_url() {
        Err(why) => out.push(Message::new(
            "manage.E006",
            format!("`static-url` is invalid: {why}"),
            "the development server and nginx both serve static files under it",
            format!("set `static-url` in {SETTINGS} to a path like `/static/`"),
        )),
        Ok(_) if static_dir.is_dir() => {
            if let Err(err) = collectstatic::Inputs::new(project, settings, None) {
                out.push(Message::new(
                    "manage.E008",
                    format!("{err:#}"),
                    "collectstatic would collect its own output, and `--clear` would delete sources",
                    format!("set `static-build-dir` in {SETTINGS} outside `static-dir`"),
                ));
            }
        }
        Ok(_) => {}
    }
    // deploy-config checks the shared settings too; say it once.
    let said = |id: &str| out.iter().any(|m: &Message| m.id == id);
    let (e005, e006) = (said("manage.E005"), said("manage.E006"));
    for problem in &review.problems {
        if (e005 && problem.starts_with("`health-path`"))
            || (e006 && problem.starts_with("`static-url`"))
        {
            continue;
        }
        out.push(Message::new(
            "manage.E007",
            problem.clone(),
            "deploy-config refuses to write anything until every deploy setting is valid",
            format!("fix it in {DEPLOY} of `{manifest}`"),
        ));
    }
}
