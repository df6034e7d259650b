//! `manage deploy-config`: not yet implemented.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ui: &crate::ui::Ui) -> anyhow::Result<()> {
    anyhow::bail!("`manage deploy-config` is not yet implemented")
}
