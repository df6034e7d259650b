//! `[package.metadata.manage]`: the settings every command shares, read
//! and checked in one place.
//!
//! Each command reads the table through [`Settings::load`], so a key that
//! is misspelt or has the wrong type is refused the same way by every
//! command, and a value such as `static-url` means the same thing to
//! runserver and to deploy-config. The `deploy` sub-table is kept as raw
//! JSON here: its schema and its validation belong to deploy-config.

use std::path::PathBuf;

use anyhow::Result;
use serde::Deserialize;

use crate::error::Hint;
use crate::project::Project;

/// Where static files are served when `static-url` is not set (Django's
/// `STATIC_URL` default).
pub const DEFAULT_STATIC_URL: &str = "/static/";

/// The directory of static files, relative to the package, when
/// `static-dir` is not set.
pub const DEFAULT_STATIC_DIR: &str = "static";

/// URL paths under this prefix belong to the development server itself
/// (live reload, the error page); no setting may claim them.
pub const RESERVED_PREFIX: &str = "/__manage/";

/// Where `manage collectstatic` writes, below cargo's target directory,
/// when `static-build-dir` is not set.
pub const DEFAULT_STATIC_BUILD_DIR: &str = "staticfiles";

/// `[package.metadata.manage]` as written. Every key is optional; the
/// commands apply their defaults and flags on top.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    pub dev_addr: Option<String>,
    pub static_dir: Option<PathBuf>,
    pub static_url: Option<String>,
    pub health_path: Option<String>,
    pub debounce_ms: Option<u64>,
    pub allowed_hosts: Option<Vec<String>>,
    pub livereload: Option<bool>,
    /// Where the app listens, for an app that neither reads `PORT` nor
    /// takes the passed socket and that discovery cannot see.
    pub app_addr: Option<String>,
    /// What runserver starts the app with after its name (a server
    /// subcommand: `["start"]`), when `manage runserver -- ARGS` gives none.
    pub app_args: Option<Vec<String>>,
    /// Where `manage collectstatic` writes the collected tree, relative to
    /// the package (issue #13).
    pub static_build_dir: Option<PathBuf>,
    /// `manage check` ids to leave out (`["manage.W004"]`), as Django's
    /// SILENCED_SYSTEM_CHECKS.
    pub silenced_checks: Option<Vec<String>>,
    /// The database when neither `--database-url` nor `DATABASE_URL` (the
    /// environment or the project's `.env`) names one.
    pub database_url: Option<String>,
    /// sqlx-style migrations, relative to the package directory.
    pub migrations_dir: Option<PathBuf>,
    /// `[package.metadata.manage.deploy]`, for deploy-config to read.
    pub deploy: Option<serde_json::Value>,
}

impl Settings {
    /// Reads the selected package's table; a missing table is all
    /// defaults. The error names the failing key.
    pub fn load(project: &Project) -> Result<Settings> {
        let value = project.settings_value();
        if value.is_null() {
            return Ok(Settings::default());
        }
        serde_path_to_error::deserialize(value.clone()).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let at = if path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            anyhow::Error::new(inner).context(Hint {
                message: format!(
                    "invalid settings{at} in [package.metadata.manage] of `{}`",
                    project.manifest_path().display()
                ),
                hint: "the keys are dev-addr, static-dir, static-url, health-path, debounce-ms, \
                       allowed-hosts, livereload, app-addr, app-args, static-build-dir, silenced-checks, database-url, migrations-dir and the [package.metadata.manage.deploy] table"
                    .into(),
            })
        })
    }

    /// `static-dir`, resolved against the package directory.
    pub fn static_dir(&self, project: &Project) -> PathBuf {
        project.package_dir().join(
            self.static_dir
                .as_deref()
                .unwrap_or(std::path::Path::new(DEFAULT_STATIC_DIR)),
        )
    }

    /// Where collectstatic writes: `static-build-dir` resolved against the
    /// package directory, else `staticfiles/` in cargo's target directory.
    pub fn static_build_dir(&self, project: &Project) -> PathBuf {
        match &self.static_build_dir {
            Some(dir) => project.package_dir().join(dir),
            None => project.target_dir().join(DEFAULT_STATIC_BUILD_DIR),
        }
    }

    /// `static-url`, checked and normalised (see [`static_url`]).
    pub fn static_url(&self) -> Result<String, String> {
        static_url(self.static_url.as_deref().unwrap_or(DEFAULT_STATIC_URL))
    }
}

/// The one rule for a static URL prefix, for every command: a path of
/// letters, digits and `/._-` that starts with `/`, is not `/` alone, has
/// no empty or `..` segment and does not reach into manage's own
/// endpoints. A missing trailing slash is added (`/static` means
/// `/static/`), as both the proxy and nginx match on the prefix.
pub fn static_url(value: &str) -> Result<String, String> {
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
    {
        return Err(format!(
            "`{}` is not allowed in the static URL (letters, digits, `/._-`)",
            c.escape_default()
        ));
    }
    let mut url = value.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    if !url.starts_with('/')
        || url == "/"
        || url.contains("//")
        || url.split('/').any(|s| s == "..")
    {
        return Err(
            "the static URL is a path like `/static/`: starting with `/`, not `/` alone".into(),
        );
    }
    if url.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "`{RESERVED_PREFIX}` belongs to the development server"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_urls_are_one_rule() {
        assert_eq!(static_url("/static/").unwrap(), "/static/");
        assert_eq!(static_url("/static").unwrap(), "/static/");
        assert_eq!(static_url("/assets/v1").unwrap(), "/assets/v1/");
        for bad in [
            "",
            "/",
            "static/",
            "//x/",
            "/a//b/",
            "/../x/",
            "/a b/",
            "/a?b/",
            "/a#/",
            "/__manage/",
            "/__manage/x",
            "/a;b/",
            "/é/",
        ] {
            assert!(static_url(bad).is_err(), "{bad:?} accepted");
        }
    }
}
