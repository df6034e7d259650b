//! Integration tests: the real `manage` binary, real cargo builds of
//! generated projects, real servers on loopback.

mod browser;
mod check;
mod cli;
mod collectstatic;
mod deploy_compose;
mod deploy_config;
mod deploy_container;
mod deploy_database;
mod deploy_generated;
mod deploy_hardening;
mod deploy_kubernetes;
mod deploy_live;
mod deploy_ops;
mod deploy_systemd;
mod deploy_targets;
mod devproxy;
mod hardening;
mod migrate;
mod proxy_hardening;
mod runserver;
mod runserver_apps;
mod runserver_db;
mod startproject;
mod statics_hardening;
mod support;
