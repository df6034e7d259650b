//! The command line: global options, the subcommand enum, and dispatch.

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::ui::{ColorChoice, Ui, Verbosity};

const ABOUT: &str = "Django's manage.py for Rust web services";

const AFTER_HELP: &str = "\
Development and production are two worlds, as in Django:
  manage startproject mysite     scaffold an axum + tokio service
  manage runserver               develop it behind a live-reloading proxy
  manage deploy-config           generate nginx + systemd files for production
  manage collectstatic           hashed, compressed static files for nginx
  manage check --deploy          what is weak or stale before deploying
  manage migrate                 apply database migrations (makemigrations,
                                 showmigrations, dbshell)

See `manage help <command>` for the options of each command.";

#[derive(Debug, Parser)]
#[command(name = "manage", version, about = ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Say more about what is happening (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to use colour: auto honours NO_COLOR, TERM=dumb and non-terminals
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl GlobalArgs {
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

impl From<ColorArg> for ColorChoice {
    fn from(arg: ColorArg) -> Self {
        match arg {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new Rust web service from a template
    Startproject(commands::startproject::Args),
    /// Run the development server: watch, rebuild, restart without downtime
    Runserver(commands::runserver::Args),
    /// Generate production deployment files (nginx, systemd, firewall)
    DeployConfig(commands::deploy_config::Args),
    /// Copy static files to a build directory with hashed names, a manifest and .gz/.br copies
    Collectstatic(commands::collectstatic::Args),
    /// Check the project and its settings; with --deploy, its production readiness
    Check(commands::check::Args),
    /// Apply pending database migrations (creates the SQLite file if needed)
    Migrate(commands::migrate::apply::Args),
    /// Write a new, empty migration pair (up and down) into migrations/
    Makemigrations(commands::migrate::make::Args),
    /// List the migrations, applied and pending
    Showmigrations(commands::migrate::show::Args),
    /// Open sqlite3 or psql on the project's database
    Dbshell(commands::migrate::shell::Args),
    /// runserver's process reaper (internal)
    #[command(name = commands::runserver::reaper::SUBCOMMAND, hide = true)]
    Reap,
    /// Print a shell completion script to stdout
    Completions {
        /// The shell to generate completions for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub fn parse() -> Cli {
    Cli::parse()
}

pub fn run(cli: Cli, ui: &Ui) -> anyhow::Result<()> {
    match cli.command {
        Command::Startproject(args) => commands::startproject::run(args, ui),
        Command::Runserver(args) => commands::runserver::run(args, ui),
        Command::DeployConfig(args) => commands::deploy_config::run(args, ui),
        Command::Collectstatic(args) => commands::collectstatic::run(args, ui),
        Command::Check(args) => commands::check::run(args, ui),
        Command::Migrate(args) => commands::migrate::apply::run(args, ui),
        Command::Makemigrations(args) => commands::migrate::make::run(args, ui),
        Command::Showmigrations(args) => commands::migrate::show::run(args, ui),
        Command::Dbshell(args) => commands::migrate::shell::run(args, ui),
        Command::Reap => commands::runserver::reap(),
        Command::Completions { shell } => {
            // clap_complete panics when its writer fails: render in memory,
            // so a closed pipe is an error main knows to treat as success.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "manage", &mut script);
            let script = String::from_utf8(script).context("completion script is not UTF-8")?;
            ui.out(&script)
                .context("cannot write the completion script")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
