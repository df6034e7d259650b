//! `manage check --deploy`: production checks over the settings, over what
//! deploy-config would write and what is on disk (Django's
//! `check --deploy`, for nginx + systemd).
//!
//! Extension point: checks that need other parts of the project add a
//! function to [`checks`]; `migrations_pending` (W010) asks the database
//! `manage migrate` would use.

use std::net::IpAddr;
use std::path::Path;

use super::message::Message;
use crate::commands::collectstatic::{self, Freshness};
use crate::commands::deploy_config::{Context, Review};
use crate::database;
use crate::project::Project;
use crate::settings::Settings;

const DEPLOY: &str = "[package.metadata.manage.deploy]";

pub fn checks(project: &Project, settings: &Settings, review: &Review, out: &mut Vec<Message>) {
    if let Some(ctx) = &review.context {
        tls(ctx, out);
        secret(project, ctx, out);
        if ctx.ports.len() == 1 {
            out.push(Message::new(
                "manage.W004",
                "one app instance (`instances = 1`)",
                "there is no rolling restart: every release and every crash is downtime",
                format!("set `instances = 2` (or more) in {DEPLOY}"),
            ));
        }
        reachable(ctx, review, out);
        debug_build(ctx, review, out);
    }
    on_disk(review, out);
    statics(project, settings, out);
    migrations_pending(project, settings, out);
}

fn tls(ctx: &Context, out: &mut Vec<Message>) {
    if !ctx.tls.enabled {
        out.push(Message::new(
            "manage.W001",
            "TLS is off (`tls = \"off\"`)",
            "passwords, cookies and pages cross the network in clear text and can be changed on the way",
            format!("set `tls = \"letsencrypt\"` (or `\"custom\"` with your certificate) in {DEPLOY}"),
        ));
    } else if !ctx.hsts.enabled || ctx.hsts.max_age < 31_536_000 {
        out.push(Message::new(
            "manage.W002",
            if ctx.hsts.enabled {
                format!("HSTS lasts only {} s (`hsts-max-age`)", ctx.hsts.max_age)
            } else {
                "HSTS is off".to_owned()
            },
            "without a long Strict-Transport-Security, a browser's first request may go over \
             plain HTTP, where an attacker can downgrade the whole visit",
            format!("set `hsts = true` and `hsts-max-age = 63072000` (two years) in {DEPLOY}"),
        ));
    }
}

/// W003: the production secret is the development one from `.env`, or
/// one made for development (`insecure-`), or short.
fn secret(project: &Project, ctx: &Context, out: &mut Vec<Message>) {
    let development = env_value(&project.package_dir().join(".env"), "SECRET_KEY");
    let mut candidates = Vec::new();
    if let Ok(key) = std::env::var("SECRET_KEY") {
        candidates.push(("the environment's `SECRET_KEY`".to_owned(), key));
    }
    if let Some(key) = env_value(Path::new(&ctx.env_file), "SECRET_KEY") {
        candidates.push((format!("`SECRET_KEY` in `{}`", ctx.env_file), key));
    }
    for (source, key) in candidates {
        let why = if development.as_deref() == Some(key.as_str()) {
            "is the development secret from `.env`"
        } else if key.starts_with("insecure-") {
            "is a development secret (it starts with `insecure-`)"
        } else if key.len() < 32 {
            "is shorter than 32 characters"
        } else {
            continue;
        };
        out.push(Message::new(
            "manage.W003",
            format!("{source} {why}"),
            "whoever knows the secret can forge sessions and signed values; `.env` is on every \
             developer's machine",
            format!(
                "put a fresh random `SECRET_KEY` (50 characters or more) in `{}` (`env-file` in {DEPLOY})",
                ctx.env_file
            ),
        ));
    }
}

/// `KEY=value` from an env file, if it is readable (it is root-only on
/// the server, so this sees it only where it runs as root).
fn env_value(path: &Path, key: &str) -> Option<String> {
    let text = crate::files::read_regular(path, 1 << 20).ok()?;
    String::from_utf8_lossy(&text).lines().find_map(|line| {
        let (k, v) = line
            .trim()
            .strip_prefix("export ")
            .unwrap_or(line.trim())
            .split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// W005: app sockets reachable from more than the web machine.
fn reachable(ctx: &Context, review: &Review, out: &mut Vec<Message>) {
    let mut found = Vec::new();
    if let Some(topology) = &ctx.topology {
        for app in &topology.apps {
            if app.address.parse::<IpAddr>().is_ok_and(|ip| !private(ip)) {
                found.push(format!(
                    "the app machine `{}` has a public address",
                    app.address
                ));
            }
        }
    }
    for (path, value) in unit_lines(review, ".socket", "ListenStream=") {
        let wildcard = !value.contains(':')
            || value.starts_with("0.0.0.0:")
            || value.starts_with("[::]:")
            || value.starts_with(':');
        if wildcard {
            found.push(format!(
                "`{path}` listens on every address (`ListenStream={value}`)"
            ));
        }
    }
    for what in found {
        out.push(Message::new(
            "manage.W005",
            format!("{what}: app ports may be reachable from outside the web machine"),
            "the app then answers clients directly, past nginx's TLS, rate limit and headers",
            "give each machine a private address in `topology` and regenerate with \
             `manage deploy-config --force`",
        ));
    }
}

fn private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64
        }
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00 || v6.is_loopback(),
    }
}

/// W006: the units run a debug build.
fn debug_build(ctx: &Context, review: &Review, out: &mut Vec<Message>) {
    let mut found = Vec::new();
    if ctx.binary.contains("/debug/") {
        found.push(format!("`binary` = `{}`", ctx.binary));
    }
    for (path, value) in unit_lines(review, ".service", "ExecStart=") {
        if value.contains("/debug/") {
            found.push(format!("`{path}` runs `{value}`"));
        }
    }
    for what in found {
        out.push(Message::new(
            "manage.W006",
            format!("{what}: a debug build"),
            "debug builds are many times slower and keep debug assertions and overflow checks",
            format!(
                "build with `cargo build --release` and point `binary` in {DEPLOY} at where \
                 install.sh puts target/release/NAME (the default)"
            ),
        ));
    }
}

/// `KEY=` values in the systemd units under `deploy/`, by file.
fn unit_lines(review: &Review, suffix: &str, key: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![review.deploy_dir.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() && !path.is_symlink() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                let Ok(text) = crate::files::read_regular(&path, 1 << 20) else {
                    continue;
                };
                for line in String::from_utf8_lossy(&text).lines() {
                    if let Some(value) = line.trim().strip_prefix(key) {
                        found.push((path.display().to_string(), value.trim().to_owned()));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

/// W007 / I001: `deploy/` against what the settings render.
fn on_disk(review: &Review, out: &mut Vec<Message>) {
    let dir = review.deploy_dir.display();
    if !review.deploy_dir_exists {
        out.push(Message::new(
            "manage.I001",
            format!("`{dir}` has not been generated"),
            "check compares the deployment files on disk with what the settings produce",
            "run `manage deploy-config`",
        ));
    } else if review.context.is_some() && !review.stale.is_empty() {
        let mut names: Vec<String> = review
            .stale
            .iter()
            .take(5)
            .map(|p| format!("`{}`", p.display()))
            .collect();
        if review.stale.len() > 5 {
            names.push(format!("and {} more", review.stale.len() - 5));
        }
        out.push(Message::new(
            "manage.W007",
            format!(
                "{} file(s) in `{dir}` differ from what the settings produce: {}",
                review.stale.len(),
                names.join(", ")
            ),
            "the machines would get files that no longer match Cargo.toml (a setting changed, \
             or a file was edited by hand and the next regeneration undoes it)",
            "see the differences with `manage deploy-config --check`, then regenerate with \
             `manage deploy-config --force` (or change the settings)",
        ));
    }
}

/// W008 / W009: collectstatic's output against `static-dir`.
fn statics(project: &Project, settings: &Settings, out: &mut Vec<Message>) {
    let Ok((dir, freshness)) = collectstatic::freshness(project, settings) else {
        // A static directory that cannot be collected is E004/E008 or
        // collectstatic's own error.
        return;
    };
    let dir = dir.display();
    match freshness {
        Freshness::Fresh => {}
        Freshness::NotCollected => out.push(Message::new(
            "manage.W008",
            format!(
                "static files are not collected (no `{dir}/{}`)",
                collectstatic::MANIFEST
            ),
            "without hashed names, nginx cannot let browsers cache static files, and the app \
             links plain names that browsers may keep stale",
            "run `manage collectstatic` (output in `static-build-dir`) before deploying",
        )),
        Freshness::Stale(n) => out.push(Message::new(
            "manage.W009",
            format!("the collected static files in `{dir}` are stale ({n} to update)"),
            "pages would reference hashed names of files that changed since, or miss new files",
            "run `manage collectstatic` again before deploying",
        )),
    }
}

/// W010: migrations in the migrations directory that the database
/// `manage migrate` would use (`DATABASE_URL`, `.env`, `database-url`,
/// else SQLite) has not applied. A database that is not there, or does not
/// answer, says nothing: this check is about work left undone, and the
/// deploy's own `migrate` step reports a database it cannot reach.
fn migrations_pending(project: &Project, settings: &Settings, out: &mut Vec<Message>) {
    let Ok(target) = database::Target::resolve(None, None, settings, project.package_dir()) else {
        return;
    };
    if !target.migrations_dir.is_dir() {
        return;
    }
    let status = async {
        let migrations = database::Migrations::load(&target.migrations_dir)
            .await
            .ok()?;
        let mut conn = database::connect(&target.db, false).await.ok()??;
        let entries = migrations.status(Some(&mut conn)).await.ok();
        conn.close().await;
        entries
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Some(entries) = runtime.block_on(status) else {
        return;
    };
    let pending: Vec<&str> = entries
        .iter()
        .filter(|e| e.state == database::State::Pending)
        .map(|e| e.name.as_str())
        .collect();
    if let Some(first) = pending.first() {
        out.push(Message::new(
            "manage.W010",
            format!(
                "{} migration{} not applied to `{}` (first: {first})",
                pending.len(),
                if pending.len() == 1 { "" } else { "s" },
                target.db.redacted()
            ),
            "the code expects a schema this database does not have yet",
            "run `manage migrate`; in production the deploy runs the binary's `migrate` before the instances start",
        ));
    }
}
