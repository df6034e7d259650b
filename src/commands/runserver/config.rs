//! runserver's configuration: the command-line arguments, merged with
//! `[package.metadata.manage]` and checked once into a [`Config`] that the
//! rest of runserver reads (as ripgrep turns its low-level arguments into
//! high-level ones), and the [`Plan`]: which binary to build and which
//! directories to watch, recomputed when Cargo.toml changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::addr::{parse_addr, AppAddr};
use super::build::BuildSpec;
use super::editor::Editor;
use super::events::Events;
use super::migrations::MigrationCheck;
use super::watch::WatchSet;
use crate::database::Target;
use crate::error::hinted;
use crate::project::{Project, Selector};
use crate::settings::{self, Settings};

pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
const DEFAULT_DEBOUNCE_MS: u64 = 20;
/// How long a request waits for an app while a build runs.
pub const HOLD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  manage runserver                 http://127.0.0.1:8000/ (or `dev-addr` from Cargo.toml)
  manage runserver 8080            another port on 127.0.0.1
  manage runserver 0.0.0.0:8000    reachable from other machines (development only!)
  manage runserver [::1]:8000      IPv6 loopback
  manage runserver -- start        the app started as `<bin> start` (Loco, clap servers)

The app gets a listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID, as systemd
and systemfd pass it) and HOST=127.0.0.1, PORT=<a free port>. An app that
uses neither is found where it listens (a fixed port, its own variable), or
named with --app-addr. manage holds the public address, so the browser never
sees the app go down: a new build takes traffic only once it is ready.

MANAGE_EDITOR (else EDITOR) makes each file:line in the error pages a link
that opens your editor there: `vscode`, `zed`, `emacsclient`, `rustrover`...,
or a template such as `myedit +{line} {file}`.")]
pub struct Args {
    /// Where to listen: PORT, ADDR:PORT or [IPV6]:PORT [default: `dev-addr` setting, else 127.0.0.1:8000]
    #[arg(value_name = "[ADDR:]PORT")]
    pub addrport: Option<String>,

    #[command(flatten)]
    pub selector: Selector,

    /// Binary to run, when the package has several
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,

    /// Build with the release profile
    #[arg(long)]
    pub release: bool,

    /// Features to activate (comma separated)
    #[arg(short = 'F', long, value_delimiter = ',', value_name = "FEATURES")]
    pub features: Vec<String>,

    /// Activate all features
    #[arg(long)]
    pub all_features: bool,

    /// Do not activate the `default` feature
    #[arg(long)]
    pub no_default_features: bool,

    /// Build and run once; do not watch for changes (Django's --noreload)
    #[arg(long)]
    pub noreload: bool,

    /// Path a new build must answer with 2xx before it gets traffic [setting: `health-path`; default: a TCP connect]
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,

    /// Milliseconds to gather a burst of changes; a single file saved after a quiet spell builds at once [setting: `debounce-ms`; default: 20]
    #[arg(long, value_name = "MS")]
    pub debounce: Option<u64>,

    /// Seconds a new build may take to become ready
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub ready_timeout: u64,

    /// Seconds an old app gets to finish its requests after SIGTERM, before SIGKILL
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub grace: u64,

    /// Also accept requests for this Host (repeatable; `.example.com` for subdomains) [setting: `allowed-hosts`]
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Do not inject the live-reload script into HTML pages [setting: `livereload = false`]
    #[arg(long)]
    pub no_livereload: bool,

    /// Do not serve the static directory; pass /static/ requests to the app
    #[arg(long)]
    pub nostatic: bool,

    /// Seconds the app may take to start answering a request before the client gets 504
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub response_timeout: u64,

    /// Where the app listens, when it reads neither PORT nor LISTEN_FDS and manage cannot find it: an address, or `unix:PATH` for a Unix socket [setting: `app-addr`]
    #[arg(long, value_name = "[ADDR:]PORT|unix:PATH")]
    pub app_addr: Option<String>,

    /// Apply pending migrations before each start of the app (else they are reported) [database: as `manage migrate`'s]
    #[arg(long)]
    pub migrate: bool,

    /// Also write what happens (builds, starts, swaps, reloads) as JSON lines to PATH (`-`: stdout; `/dev/fd/N`: an open descriptor)
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,

    /// Arguments for the app, after `--` (`manage runserver -- start`) [setting: `app-args`]
    #[arg(last = true, value_name = "APP_ARGS")]
    pub app_args: Vec<String>,
}

/// What to build: the flags cargo gets.
#[derive(Debug, Clone)]
pub struct BuildFlags {
    pub bin: Option<String>,
    pub release: bool,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
}

/// Everything runserver decided from the flags and the settings: one
/// snapshot, made again (from the same flags) when Cargo.toml changes.
#[derive(Debug, Clone)]
pub struct Config {
    /// The flags it was made from.
    pub args: Args,
    pub selector: Selector,
    pub build: BuildFlags,
    /// The public address manage listens on.
    pub addr: SocketAddr,
    pub health_path: Option<String>,
    pub debounce: Duration,
    /// With a leading and a trailing `/`.
    pub static_url: String,
    pub livereload: bool,
    /// Lowercase, without a trailing dot.
    pub allowed_hosts: Vec<String>,
    pub ready_timeout: Duration,
    pub response_timeout: Duration,
    pub grace: Duration,
    pub noreload: bool,
    pub nostatic: bool,
    /// Where the app listens, when the user says so.
    pub app_addr: Option<AppAddr>,
    /// The database and migrations checked (with `--migrate`, applied)
    /// before each start.
    pub migrations: Option<Arc<MigrationCheck>>,
    pub plan: Plan,
    /// After the app's name when it starts: `-- ARGS`, else `app-args`.
    pub app_args: Vec<String>,
    /// `--events`' sink (or none).
    pub events: Events,
    /// Where file:line links in the error pages open (`MANAGE_EDITOR`).
    pub editor: Option<Arc<Editor>>,
}

/// Everything a cycle needs, derived from the project and the flags.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: BuildSpec,
    pub package_dir: PathBuf,
    pub watch_set: WatchSet,
}

impl Config {
    pub fn resolve(args: Args, project: &Project, events: Events) -> Result<Config> {
        let kept = args.clone();
        let settings = Settings::load(project)?;
        let addr_text = args
            .addrport
            .clone()
            .or(settings.dev_addr.clone())
            .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = parse_addr(&addr_text)?;
        let app_addr = match args.app_addr.as_ref().or(settings.app_addr.as_ref()) {
            Some(text) => Some(
                AppAddr::parse(text, project.package_dir())
                    .map_err(|err| err.context(format!("invalid app address `{text}`")))?,
            ),
            None => None,
        };
        if app_addr == Some(AppAddr::Tcp(addr)) {
            return Err(hinted(
                format!("the app address {addr} is the address runserver itself listens on"),
                "give runserver another address (`manage runserver 8000`) or the app another port",
            ));
        }
        let health_path = args.health_path.or(settings.health_path.clone());
        if let Some(path) = &health_path {
            validate_health_path(path)?;
        }
        let static_url = settings.static_url().map_err(|why| {
            hinted(
                format!("invalid `static-url`: {why}"),
                "set `static-url` in [package.metadata.manage] to a path prefix such as `/static/`",
            )
        })?;
        let allowed_hosts = settings
            .allowed_hosts
            .iter()
            .flatten()
            .chain(args.allowed_hosts.iter())
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let build = BuildFlags {
            bin: args.bin,
            release: args.release,
            features: args.features,
            all_features: args.all_features,
            no_default_features: args.no_default_features,
        };
        let plan = plan(project, &build, &settings)?;
        // A URL manage cannot use (MySQL, say) only turns the check off.
        let migrations = Target::resolve(None, None, &settings, project.package_dir())
            .ok()
            .map(|target| MigrationCheck::new(target, args.migrate));
        Ok(Config {
            args: kept,
            selector: args.selector,
            build,
            addr,
            health_path,
            debounce: Duration::from_millis(
                args.debounce
                    .or(settings.debounce_ms)
                    .unwrap_or(DEFAULT_DEBOUNCE_MS),
            ),
            static_url,
            livereload: !args.no_livereload && settings.livereload.unwrap_or(true),
            allowed_hosts,
            ready_timeout: Duration::from_secs(args.ready_timeout),
            response_timeout: Duration::from_secs(args.response_timeout.max(1)),
            grace: Duration::from_secs(args.grace),
            noreload: args.noreload,
            nostatic: args.nostatic,
            app_addr,
            migrations,
            plan,
            app_args: if args.app_args.is_empty() {
                settings.app_args.clone().unwrap_or_default()
            } else {
                args.app_args
            },
            events,
            editor: Editor::from_env(project.workspace_root())?.map(Arc::new),
        })
    }

    /// The snapshot after Cargo.toml changed: the same flags over the new
    /// settings, binaries and members.
    pub fn reload(&self, project: &Project) -> Result<Config> {
        let mut new = Config::resolve(self.args.clone(), project, self.events.clone())?;
        // Open pages carry the editor links' token: it stays.
        new.editor = self.editor.clone();
        Ok(new)
    }

    /// The settings that differ in `new`, by their names in Cargo.toml.
    pub fn differences(&self, new: &Config) -> Vec<&'static str> {
        let (a, b) = (self, new);
        let target = |c: &Config| c.migrations.as_ref().map(|m| m.target().clone());
        let database = |c: &Config| target(c).map(|t| format!("{:?}", t.db));
        let migrations = |c: &Config| target(c).map(|t| t.migrations_dir);
        [
            ("dev-addr", a.addr != b.addr),
            ("health-path", a.health_path != b.health_path),
            ("debounce-ms", a.debounce != b.debounce),
            ("static-url", a.static_url != b.static_url),
            (
                "static-dir",
                a.plan.watch_set.static_dir != b.plan.watch_set.static_dir,
            ),
            ("livereload", a.livereload != b.livereload),
            ("allowed-hosts", a.allowed_hosts != b.allowed_hosts),
            ("app-addr", a.app_addr != b.app_addr),
            ("app-args", a.app_args != b.app_args),
            ("database-url", database(a) != database(b)),
            ("migrations-dir", migrations(a) != migrations(b)),
            ("bin", a.plan.spec.bin != b.plan.spec.bin),
            ("members", a.plan.watch_set.roots != b.plan.watch_set.roots),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Picks the package's binary and the directories to watch.
fn plan(project: &Project, build: &BuildFlags, settings: &Settings) -> Result<Plan> {
    let package = project.package();
    let bins = project.bin_names();
    let list = || {
        bins.iter()
            .map(|b| format!("`{b}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bin = match (&build.bin, bins.as_slice()) {
        (_, []) => {
            return Err(hinted(
                format!("package `{}` has no binary target to run", package.name),
                "runserver runs a web server binary: add `src/main.rs` or a `[[bin]]` target",
            ))
        }
        (Some(wanted), _) => {
            if !bins.contains(&wanted.as_str()) {
                return Err(hinted(
                    format!("package `{}` has no binary named `{wanted}`", package.name),
                    format!("choose one of {}", list()),
                ));
            }
            wanted.clone()
        }
        (None, [only]) => (*only).to_owned(),
        (None, _) => match &package.default_run {
            Some(default) => default.clone(),
            None => {
                return Err(hinted(
                    format!("package `{}` has several binaries", package.name),
                    format!(
                        "pick one with `--bin NAME` ({}), or set `default-run` in Cargo.toml",
                        list()
                    ),
                ))
            }
        },
    };

    let package_dir = project.package_dir().to_path_buf();
    let mut roots: Vec<PathBuf> = project
        .metadata
        .packages
        .iter()
        .filter(|p| p.source.is_none())
        .filter_map(|p| {
            p.manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
        })
        .collect();
    roots.push(project.workspace_root().to_path_buf());
    roots.sort();
    roots.dedup();
    let nested: Vec<PathBuf> = roots
        .iter()
        .filter(|r| roots.iter().any(|o| o != *r && r.starts_with(o)))
        .cloned()
        .collect();
    roots.retain(|r| !nested.contains(r));

    let static_dir = Some(
        package_dir.join(
            settings
                .static_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(settings::DEFAULT_STATIC_DIR)),
        ),
    );

    Ok(Plan {
        spec: BuildSpec {
            manifest_path: project.manifest_path().to_path_buf(),
            package: package.name.to_string(),
            bin,
            release: build.release,
            features: build.features.clone(),
            all_features: build.all_features,
            no_default_features: build.no_default_features,
        },
        package_dir,
        watch_set: WatchSet {
            roots,
            target_dir: project.target_dir().to_path_buf(),
            static_dir,
        },
    })
}

fn validate_health_path(path: &str) -> Result<()> {
    if !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        bail!(
            "health path `{}` must start with `/` and contain no spaces or control characters",
            path.escape_debug()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_address_forms() {
        assert_eq!(
            parse_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("0.0.0.0:8000").unwrap(),
            "0.0.0.0:8000".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::1]:8000").unwrap(),
            "[::1]:8000".parse().unwrap()
        );
        assert!(parse_addr("localhost:8000").unwrap().ip().is_loopback());
        for bad in ["", "abc", "99999", "1.2.3.4", ":80", "a b:80", "[::1]"] {
            assert!(parse_addr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn health_paths() {
        assert!(validate_health_path("/healthz").is_ok());
        for bad in ["healthz", "/a b", "/a\r\nX: y", "/#x"] {
            assert!(validate_health_path(bad).is_err(), "{bad:?}");
        }
    }
}
