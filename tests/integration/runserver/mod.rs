//! `manage runserver` on std-only projects: how it serves and swaps
//! (`serve`), apps that manage did not generate (`apps`), the proxy against
//! hostile clients (`proxy`, `upgrades`, `hosts`), static files
//! (`static_dir`, `statics`), hostile projects (`projects`), files the app
//! reads as it runs (`runtime`), live reload and error pages
//! (`livereload`), and what it tells scripts (`events`).

mod apps;
mod editor;
mod events;
mod hosts;
mod livereload;
mod projects;
mod proxy;
mod runtime;
mod serve;
mod settings;
mod static_dir;
mod statics;
mod upgrades;
