//! The live tier: every promise proven on the real component. Builds of
//! the generated project under runserver and on its own, headless
//! Chromium, PostgreSQL clusters, Docker images and compose, booted Debian
//! machines (debootstrap + systemd-nspawn) and network namespaces.
//! `cargo test --test live` runs it alone; `.ci/run` runs both tiers.

mod deploy_config;
mod migrate;
mod runserver;
mod startproject;
#[path = "../support/mod.rs"]
mod support;
