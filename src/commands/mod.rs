//! One module per subcommand: each has `Args` (clap) and `run`.

pub mod check;
pub mod collectstatic;
pub mod deploy_config;
pub mod migrate;
pub mod runserver;
pub mod startproject;
