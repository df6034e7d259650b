//! `manage runserver` on std-only projects: how it serves and swaps
//! (`serve`), apps that manage did not generate (`apps`), the proxy against
//! hostile clients (`proxy`, `upgrades`), static files (`statics`) and
//! hostile projects (`projects`), files the app reads as it runs
//! (`runtime`), and what it tells scripts (`events`).

mod apps;
mod events;
mod projects;
mod proxy;
mod runtime;
mod serve;
mod statics;
mod upgrades;
