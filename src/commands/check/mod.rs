//! `manage check [--deploy] [--fail-level LEVEL] [--format text|json]`
//! (issue #13): Django's system checks for a manage project.
//!
//! Every finding has a stable id (`manage.E001`, `manage.W003`), a level,
//! what is wrong, why it matters and the setting that fixes it. Plain
//! `check` looks at the project and its settings (errors: something would
//! break); `--deploy` adds the production checks over the deploy settings,
//! `deploy/` on disk and collectstatic's output (warnings: something is
//! weak or stale). Ids listed in `silenced-checks` are left out. The exit
//! status is 1 when a finding reaches `--fail-level` (default `error`), so
//! CI can run `manage check --deploy --fail-level warning`.

mod deploy;
mod message;
mod project;

use anyhow::Result;

use crate::commands::deploy_config;
use crate::error::hinted;
use crate::project::{Project, Selector};
use crate::settings::Settings;
use crate::ui::Ui;
use message::{Level, Message};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage check                                   the project and its settings
  manage check --deploy                          and the production checks
  manage check --deploy --fail-level warning     CI: fail on any warning
  manage check --deploy --format json            for tools

Exit status: 0 when no finding reaches --fail-level, 1 otherwise.
Silence an id with `silenced-checks = [\"manage.W004\"]` in
[package.metadata.manage].")]
pub struct Args {
    #[command(flatten)]
    pub selector: Selector,

    /// Add the production checks (settings, deploy/ on disk, collected static files)
    #[arg(long)]
    pub deploy: bool,

    /// Exit 1 when a finding has this level or a higher one
    #[arg(long, value_enum, default_value_t = Level::Error, value_name = "LEVEL")]
    pub fail_level: Level,

    /// How to print the findings (on stdout)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let (messages, silenced) = findings(&args)?;
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "messages": messages,
                "silenced": silenced,
                "deploy": args.deploy,
            });
            ui.out(&format!("{json:#}\n"))?;
        }
        Format::Text => {
            for m in &messages {
                ui.out(&m.text())?;
            }
        }
    }
    let failing = messages
        .iter()
        .filter(|m| m.level >= args.fail_level)
        .count();
    let summary = match messages.len() {
        0 => "no issues".to_owned(),
        1 => "1 issue".to_owned(),
        n => format!("{n} issues"),
    };
    if failing > 0 {
        return Err(hinted(
            format!(
                "check found {summary} ({silenced} silenced); {failing} at `{}` or above",
                args.fail_level.label()
            ),
            "fix them as each message says, or silence an id with `silenced-checks` in \
             [package.metadata.manage]",
        ));
    }
    ui.status("Checked", format!("{summary} ({silenced} silenced)"));
    Ok(())
}

/// Every finding, sorted by id, and how many were silenced.
fn findings(args: &Args) -> Result<(Vec<Message>, usize)> {
    let mut out = Vec::new();
    let project = match Project::load(&args.selector, false) {
        Ok(project) => project,
        Err(err) => return Ok((vec![project::unreadable(&err)], 0)),
    };
    let settings = match Settings::load(&project) {
        Ok(settings) => settings,
        Err(err) => return Ok((vec![project::bad_settings(&err)], 0)),
    };
    let review = deploy_config::review(&project, &settings)?;
    project::checks(&project, &settings, &review, &mut out);
    if args.deploy {
        deploy::checks(&project, &settings, &review, &mut out);
    }
    let silenced_ids = settings.silenced_checks.clone().unwrap_or_default();
    let before = out.len();
    out.retain(|m| !silenced_ids.iter().any(|id| id == m.id));
    let silenced = before - out.len();
    out.sort_by(|a, b| a.id.cmp(b.id));
    Ok((out, silenced))
}
