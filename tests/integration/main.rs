//! The fast tier: the real `manage` binary on small inputs. CLI,
//! startproject's tree and refusals, deploy-config's rendering, validators
//! and snapshots, check, collectstatic, migrate on SQLite, and runserver
//! against std-only fixtures. No network namespaces, containers, browsers,
//! PostgreSQL servers or builds of the generated project: those are the
//! live tier (`tests/live/`). `cargo test --test integration` runs it alone.

mod check;
mod cli;
mod collectstatic;
mod deploy_config;
mod migrate;
mod runserver;
mod startproject;
#[path = "../support/mod.rs"]
mod support;
