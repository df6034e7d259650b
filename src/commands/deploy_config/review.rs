//! What `manage check --deploy` asks of deploy-config (#13): the settings
//! validated exactly as `manage deploy-config` validates them, the
//! context they give, and which files in `deploy/` differ from what they
//! would render. One narrow entry point, so check reuses the validation and
//! the templates without reaching into them, and nothing here knows check.

use std::path::PathBuf;

use anyhow::Result;

use super::context::Context;
use super::{deploy_settings, output, plan, validate, workspace};
use crate::project::Project;

/// The outcome of validating and rendering with the project's settings and
/// no flags.
pub struct Review {
    /// Invalid values, each naming its setting; empty when valid.
    pub problems: Vec<String>,
    /// Valid values weaker than the defaults.
    pub warnings: Vec<String>,
    /// The validated context, when there were no problems.
    pub context: Option<Context>,
    /// `deploy/` next to Cargo.toml.
    pub deploy_dir: PathBuf,
    /// Files there that differ from the rendering, are missing, or are no
    /// longer generated (empty when `deploy/` does not exist: see
    /// `deploy_dir_exists`).
    pub stale: Vec<PathBuf>,
    pub deploy_dir_exists: bool,
}

pub fn review(project: &Project, shared: &crate::settings::Settings) -> Result<Review> {
    let deploy_dir = project.package_dir().join("deploy");
    let deploy_dir_exists = deploy_dir.is_dir();
    let mut review = Review {
        problems: Vec::new(),
        warnings: Vec::new(),
        context: None,
        deploy_dir,
        stale: Vec::new(),
        deploy_dir_exists,
    };
    let settings = match deploy_settings(project, shared.deploy.as_ref()) {
        Ok(settings) => settings,
        Err(err) => {
            review.problems.push(format!("{err:#}"));
            return Ok(review);
        }
    };
    let name = project.package().name.to_string();
    let ws = workspace::workspace(project, shared, &review.deploy_dir);
    let implied = Default::default();
    match validate::validate(&name, &settings, shared, &ws, implied) {
        Ok(validated) => {
            review.warnings = validated.warnings;
            let ctx = validated.context;
            if deploy_dir_exists {
                let roots = output::Roots {
                    out: review.deploy_dir.clone(),
                    workspace: project.workspace_root().to_path_buf(),
                };
                let files = output::render(&ctx, &plan::plan(&ctx), &roots)?;
                review.stale = output::stale(&review.deploy_dir, &files)?;
            }
            review.context = Some(ctx);
        }
        Err(problems) => review.problems = problems.0,
    }
    Ok(review)
}
