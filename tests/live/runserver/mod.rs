//! `manage runserver` on generated projects, built for real: edits, broken
//! builds and crashes (`reload`), the proxy as a browser meets it
//! (`pages`: live reload, banners, error pages; `access_log`), a real
//! headless Chromium (`browser`) and migrations (`db`). What the proxy does
//! with any app (static files, hosts, limits) is in the fast tier.

mod access_log;
mod browser;
mod db;
mod frameworks;
mod pages;
mod reload;
