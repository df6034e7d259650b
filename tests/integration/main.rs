//! Integration tests: the real `manage` binary, real cargo builds of
//! generated projects, real servers on loopback.

mod browser;
mod cli;
mod deploy_config;
mod deploy_live;
mod devproxy;
mod hardening;
mod runserver;
mod startproject;
mod statics_hardening;
mod support;
