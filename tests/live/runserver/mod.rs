//! `manage runserver` on generated projects, built for real: edits, broken
//! builds and crashes (`reload`), the proxy as a browser meets it
//! (`proxy`), a real headless Chromium (`browser`) and migrations (`db`).

mod browser;
mod db;
mod proxy;
mod reload;
