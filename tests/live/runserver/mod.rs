//! `manage runserver` on generated projects, built for real: edits, broken
//! builds and crashes (`reload`), the proxy as a browser meets it
//! (`proxy`: static files, hosts, limits, the access log; `pages`: live
//! reload, banners, error pages), a real headless Chromium (`browser`) and
//! migrations (`db`).

mod browser;
mod db;
mod pages;
mod proxy;
mod reload;
