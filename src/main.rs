//! `manage`: Django's `manage.py` for Rust web services.
//!
//! `main` only parses the command line, hands off to [`cli::run`], and turns
//! the outcome into an exit code. Everything a user sees goes through
//! [`ui::Ui`]; only this function prints errors.

mod cli;
mod commands;
mod database;
mod error;
mod files;
mod names;
mod project;
mod render;
mod settings;
mod ui;

use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = cli::parse();
    let ui = ui::Ui::new(cli.global.color, cli.global.verbosity());
    match cli::run(cli, &ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            ui.error(&err);
            ExitCode::FAILURE
        }
    }
}
