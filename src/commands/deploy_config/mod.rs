//! `manage deploy-config [--out DIR] [--only ...] [--check] [--force]`.
//!
//! Production files for the project: nginx on the web machine, systemd
//! socket + service template units on the app machines (systemd plays
//! gunicorn's master), PostgreSQL snippets on the db machine, an nftables
//! ruleset and an idempotent `install.sh` for each, and a README that says
//! what goes where. One machine by default; three (web, app..., db) when
//! `topology` is set. Settings come from `[package.metadata.manage.deploy]`
//! with flags on top; everything is validated before anything is
//! rendered, and rendered before anything is written (issue #5).

mod checks;
mod context;
mod output;
mod plan;
mod review;
mod settings;
mod validate;
mod workspace;

pub use context::Context;
pub use review::{review, Review};

use std::path::PathBuf;

use anyhow::Result;

use crate::error::hinted;
use crate::project::{Project, Selector};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  manage deploy-config                       writes deploy/ next to Cargo.toml
  manage deploy-config --check               fails with a diff if deploy/ is stale (CI)
  manage deploy-config --web 10.0.0.10 --app 10.0.0.20,10.0.0.21 --db 10.0.0.30
  manage deploy-config --only nginx --tls custom \\
      --tls-certificate /etc/ssl/site.pem --tls-certificate-key /etc/ssl/site.key

Settings are read from [package.metadata.manage.deploy] in Cargo.toml; see the
comments `manage startproject` writes there. Every value is checked before
anything is written.")]
pub struct Args {
    #[command(flatten)]
    pub selector: Selector,

    /// Directory to write to [default: deploy/ next to the package's Cargo.toml]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Generate only these kinds of files (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
    pub only: Vec<plan::Component>,

    /// Write nothing; exit 1 with a diff if the files on disk differ
    #[arg(long, conflicts_with = "force")]
    pub check: bool,

    /// Replace existing files that differ
    #[arg(long)]
    pub force: bool,

    // Boxed: the many optional settings would make `cli::Command` lopsided.
    #[command(flatten)]
    pub overrides: Box<settings::Overrides>,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let project = Project::load(&args.selector, false)?;
    let manifest = project.manifest_path().display().to_string();
    let shared = crate::settings::Settings::load(&project)?;
    let mut settings = deploy_settings(&project, shared.deploy.as_ref())?;
    settings.apply(*args.overrides);
    let name = project.package().name.to_string();
    let out_dir = args
        .out
        .unwrap_or_else(|| project.package_dir().join("deploy"));
    let ws = workspace::workspace(&project, &shared, &out_dir);
    // `static-url` and `health-path` are checked with the deploy settings, so
    // their problems are reported with theirs.
    let validated = validate::validate(
        &name,
        &settings,
        &shared,
        &ws,
        plan::Component::targets(&args.only),
    )
    .map_err(|p| {
        hinted(
            format!(
                "{} invalid deploy setting{}; nothing was written:\n  {}",
                p.0.len(),
                if p.0.len() == 1 { "" } else { "s" },
                p.0.join("\n  ")
            ),
            format!("fix them in [package.metadata.manage.deploy] of `{manifest}` or in the flags"),
        )
    })?;
    for warning in &validated.warnings {
        ui.warn(warning);
    }

    let ctx = validated.context;
    let mut plan = plan::plan(&ctx);
    if !args.only.is_empty() {
        plan.retain(|f| args.only.contains(&f.component));
    }
    let roots = output::Roots {
        out: out_dir.clone(),
        workspace: project.workspace_root().to_path_buf(),
    };
    let files = output::render(&ctx, &plan, &roots)?;
    // With --only, the other kinds of files on disk are expected.
    let complete = args.only.is_empty();
    if args.check {
        output::check(&out_dir, &files, complete, ui)
    } else {
        output::write(&out_dir, &files, args.force, complete, ui)
    }
}

/// `[package.metadata.manage.deploy]`, with the failing key's path in the
/// message when a value has the wrong type or a key is unknown.
pub(crate) fn deploy_settings(
    project: &Project,
    value: Option<&serde_json::Value>,
) -> Result<settings::Settings> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(settings::Settings::default());
    };
    serde_path_to_error::deserialize(value.clone()).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        anyhow::Error::new(inner).context(crate::error::Hint {
            message: format!(
                "invalid setting `{path}` in [package.metadata.manage.deploy] of `{}`; nothing was written",
                project.manifest_path().display()
            ),
            hint: "see the comments `manage startproject` writes in that table for the expected values"
                .into(),
        })
    })
}
