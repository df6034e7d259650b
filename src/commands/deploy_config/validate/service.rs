//! The app as a service: the user it runs as and where its files live.
//! Defaults derive from the package name.

use super::super::checks::*;
use super::super::settings::Settings;
use super::paths::{app_path, is_system_dir, not_packaged_binary};

/// The service user and every path of the app on the machine.
pub struct Paths {
    pub user: String,
    pub prefix: String,
    pub binary: String,
    pub env_file: String,
    /// The directory holding `env_file`, which install.sh creates.
    pub env_dir: String,
    pub static_root: String,
    pub static_url: String,
    /// What install.sh asks each instance before it counts as ready.
    pub health_path: String,
}

pub fn paths(
    p: &mut Problems,
    s: &Settings,
    name: &str,
    crate_name: &str,
    shared: &crate::settings::Settings,
) -> Paths {
    let default_user = crate::names::account(crate_name);
    let user = user_name(p, "user", s.user.as_deref().unwrap_or(&default_user)).unwrap_or_default();
    if s.user.is_none() && crate::names::system_account(&user) {
        p.add(
            "user",
            &user,
            format!("the package name gives the default user `{user}`, a system account; set `user` to an account of the app's own"),
        );
    } else if user == "root" {
        p.add(
            "user",
            &user,
            "the app never runs as root; leave `user` unset for a user of its own",
        );
    }
    let default_prefix = format!("/opt/{name}");
    let prefix =
        app_path(p, "prefix", s.prefix.as_deref().unwrap_or(&default_prefix)).unwrap_or_default();
    let default_binary = format!("{prefix}/bin/{name}");
    let binary =
        app_path(p, "binary", s.binary.as_deref().unwrap_or(&default_binary)).unwrap_or_default();
    let default_env = format!("/etc/{name}/env");
    let env_file =
        app_path(p, "env-file", s.env_file.as_deref().unwrap_or(&default_env)).unwrap_or_default();
    let env_dir = match env_file.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((dir, _)) => dir.to_owned(),
    };
    if !binary.is_empty() {
        not_packaged_binary(p, &binary);
    }
    // The unit has ProtectHome=yes: the app could neither start nor find
    // its working directory there.
    for (key, path) in [("prefix", &prefix), ("binary", &binary)] {
        if path.starts_with("/home/") || path.starts_with("/run/user/") {
            p.add(
                key,
                path,
                "the service runs with ProtectHome=yes, which hides home directories; use `/opt/NAME`",
            );
        }
    }
    // install.sh creates this directory, root-only, when it is missing.
    if is_system_dir(&env_dir) && !env_file.is_empty() {
        p.add(
            "env-file",
            &env_file,
            "must be in a directory of its own, like `/etc/NAME/env`",
        );
    }
    let default_static = format!("{prefix}/static");
    let static_root = app_path(
        p,
        "static-root",
        s.static_root.as_deref().unwrap_or(&default_static),
    )
    .unwrap_or_default();
    let static_url = url_path(
        p,
        "static-url",
        s.static_url.as_deref().unwrap_or(
            shared
                .static_url
                .as_deref()
                .unwrap_or(crate::settings::DEFAULT_STATIC_URL),
        ),
    )
    .unwrap_or_default();
    // `health-path` of [package.metadata.manage], shared with runserver.
    // Without one, any answer to `/` shows that the app is up.
    let health_path = match &shared.health_path {
        Some(path) => request_path(p, "health-path", path).unwrap_or_default(),
        None => "/".into(),
    };
    Paths {
        user,
        prefix,
        binary,
        env_file,
        env_dir,
        static_root,
        static_url,
        health_path,
    }
}
