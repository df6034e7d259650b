//! The targets (`vm`, `container`, `kubernetes`) and the container's
//! settings: image names, the user and port (Kubernetes' are in
//! `validate::kubernetes`). The workspace's shape (members,
//! target sources, static files) comes from cargo metadata through
//! [`Workspace`] and is checked like a setting, because it is pasted into
//! the Dockerfile.

use super::super::checks::*;
use super::super::context::{Container, Stub, Targets};
use super::super::settings::Settings;

/// The workspace as the container build sees it; paths are relative to the
/// workspace root and `/`-separated.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// The package's directory; `.` at the root.
    pub package_dir: String,
    /// The binary `cargo run` would run [default: the package name].
    pub bin: Option<String>,
    pub manifests: Vec<String>,
    /// Each target's root source file, and whether it has `fn main`.
    pub sources: Vec<(String, bool)>,
    /// The static files: collectstatic's output (with its manifest) when
    /// `static-build-dir` is set inside the workspace, else `static-dir`.
    pub static_source: Option<(String, bool)>,
    /// From the output directory back to the workspace root.
    pub context_from_out: String,
    /// The output directory, when it is inside the workspace (`.` for the
    /// root itself): `.dockerignore` leaves it out of the build context.
    pub out_dir: Option<String>,
    /// Whether the workspace has its Cargo.lock (the build is `--locked`).
    pub lockfile: bool,
    /// The package's version: the image tag the Kubernetes overlays deploy.
    pub version: String,
    /// The package depends on a crate that speaks systemd's notify
    /// protocol (sd-notify, libsystemd, systemd).
    pub notifies: bool,
}

/// `targets`, plus any target `--only` asks for.
pub fn targets(p: &mut Problems, s: &Settings, implied: Targets) -> Targets {
    let mut t = implied;
    if s.targets.is_empty() {
        p.add(
            "targets",
            "[]",
            "names at least one of `vm`, `container`, `kubernetes`",
        );
    }
    for (i, target) in s.targets.iter().enumerate() {
        match target.as_str() {
            "vm" => t.vm = true,
            "container" => t.container = true,
            "kubernetes" => t.kubernetes = true,
            other => p.add(
                &format!("targets[{i}]"),
                other,
                "is one of `vm` (nginx + systemd), `container` (Dockerfile, compose), `kubernetes`",
            ),
        }
    }
    t
}

pub fn container(
    p: &mut Problems,
    warnings: &mut Vec<String>,
    s: &Settings,
    name: &str,
    ws: &Workspace,
) -> Container {
    let c = &s.container;
    let default_image = name.to_ascii_lowercase();
    let image = repository(
        p,
        "container.image",
        c.image.as_deref().unwrap_or(&default_image),
    );
    let mut base = |setting: &str, value: &str| reference(p, setting, value);
    let builder_image = base("container.builder-image", &c.builder_image);
    let runtime_image = base("container.runtime-image", &c.runtime_image);
    let nginx_image = base("container.nginx-image", &c.nginx_image);
    let postgres_image = base("container.postgres-image", &c.postgres_image);
    let uid = match c.uid {
        0 => {
            p.add(
                "container.uid",
                "0",
                "the app never runs as root in its container",
            );
            0
        }
        1..=2_147_483_646 => c.uid as u32,
        _ => {
            p.add(
                "container.uid",
                &c.uid.to_string(),
                "is a user id from 1 to 2147483646",
            );
            0
        }
    };
    let port = match port(p, "container.port", c.port) {
        Some(port) if port < 1024 => {
            p.add(
                "container.port",
                &port.to_string(),
                "is a port from 1024 up: the app runs without root and without capabilities",
            );
            0
        }
        Some(port) => port,
        None => 0,
    };
    let mut path = |what: &str, value: &str| workspace_path(p, what, value);
    let package_dir = path("the package's directory", &ws.package_dir);
    let manifests = ws
        .manifests
        .iter()
        .filter_map(|m| path("a workspace member's manifest", m))
        .collect();
    let stubs = ws
        .sources
        .iter()
        .filter_map(|(source, main)| {
            let source = path("a target's source file", source)?;
            let dir = source.rsplit_once('/').map_or(".", |(d, _)| d).to_owned();
            Some(Stub {
                path: source,
                dir,
                main: *main,
            })
        })
        .collect();
    let (static_source, static_manifest) = match &ws.static_source {
        Some((dir, manifest)) => (path("the static files", dir).unwrap_or_default(), *manifest),
        None => (String::new(), false),
    };
    let bin = ws.bin.clone().unwrap_or_else(|| {
        p.add(
            "the package",
            name,
            "has no binary to run in the container (add `src/main.rs`, or set `default-run` with several)",
        );
        String::new()
    });
    let bin = if bin.is_empty() {
        bin
    } else if first_not(&bin, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_').is_some() {
        p.add(
            "the binary's name",
            &bin,
            "has characters a Dockerfile cannot carry here",
        );
        String::new()
    } else {
        bin
    };
    if !ws.lockfile {
        warnings.push(
            "the workspace has no Cargo.lock, and the Dockerfile builds with `--locked` from it: \
             run `cargo generate-lockfile` and commit Cargo.lock before `docker build`"
                .into(),
        );
    }
    let out_dir = ws.out_dir.as_deref().and_then(|out| {
        let needed = |path: &str| out == "." || path == out || path.starts_with(&format!("{out}/"));
        let mut needs = std::iter::once(&ws.package_dir)
            .chain(&ws.manifests)
            .chain(ws.sources.iter().map(|(source, _)| source))
            .chain(ws.static_source.iter().map(|(dir, _)| dir));
        if needs.any(|path| needed(path)) {
            warnings.push(format!(
                "the output directory `{out}` holds files the image is built from, so \
                 .dockerignore cannot leave it out and its files (with `container/app.env`, \
                 the app's secrets) are sent to `docker build`: write to a directory of its own \
                 with `--out`"
            ));
            return None;
        }
        workspace_path(p, "the output directory", out)
    });
    Container {
        image: image.unwrap_or_default(),
        builder_image: builder_image.unwrap_or_default(),
        runtime_image: runtime_image.unwrap_or_default(),
        nginx_image: nginx_image.unwrap_or_default(),
        postgres_image: postgres_image.unwrap_or_default(),
        uid,
        port,
        package: name.to_owned(),
        bin,
        package_dir: package_dir.unwrap_or_default(),
        manifests,
        stubs,
        static_source,
        static_manifest,
        app_dir: "/app",
        static_root: "/app/static",
        data_dir: "/data",
        context_from_out: ws.context_from_out.clone(),
        out_dir: out_dir.unwrap_or_default(),
    }
}

/// An image repository without a tag: `[host[:port]/]path`, lowercase.
fn repository(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    if !safe(p, setting, value) {
        return None;
    }
    let (host, path) = match value.split_once('/') {
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => {
            (Some(host), path)
        }
        _ => (None, value),
    };
    if let Some(host) = host {
        if first_not(host, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')
        })
        .is_some()
        {
            p.add(
                setting,
                value,
                format!("the registry `{host}` is not a host name with an optional port"),
            );
            return None;
        }
    }
    if path.contains(':') || path.contains('@') {
        p.add(
            setting,
            value,
            "names the image without a tag or digest; the tag is chosen when building (`docker build -t IMAGE:TAG`) and in each kustomize overlay",
        );
        return None;
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if value.len() > 255 || !path.split('/').all(component_ok) {
        p.add(
            setting,
            value,
            "is an image name: lowercase letters, digits, `.`, `_`, `-` between `/`, like `registry.example.com/team/app`",
        );
        return None;
    }
    Some(value.to_owned())
}

/// A base image: a repository with a tag or a digest, so builds repeat.
fn reference(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    let (name, pin) = match value.split_once('@') {
        Some((name, digest)) => {
            let ok = digest
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                p.add(setting, value, "the digest is `sha256:` and 64 hex digits");
                return None;
            }
            (name, Some(digest))
        }
        None => (value, None),
    };
    let (repo, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    };
    let repo = repository(p, setting, repo)?;
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !tag.starts_with(['.', '-']);
        if !ok {
            p.add(setting, value, format!("`{tag}` is not an image tag"));
            return None;
        }
    }
    if pin.is_none() && matches!(tag, None | Some("latest")) {
        p.add(
            setting,
            value,
            "is pinned: give a version tag (`rust:1.95-slim-bookworm`) or a digest (`@sha256:…`), so that a rebuild gets the same base",
        );
        return None;
    }
    let _ = repo;
    Some(value.to_owned())
}

/// A path below the workspace root that a Dockerfile can carry.
fn workspace_path(p: &mut Problems, what: &str, value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && !value.starts_with('/')
        && value.split('/').all(|c| c != ".." && !c.is_empty())
        && first_not(value, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
        })
        .is_none();
    if ok {
        Some(value.to_owned())
    } else {
        p.add(
            what,
            value,
            "must be inside the workspace and use only letters, digits, `.`, `_`, `-` and `/` for the container build; rename it or leave out the `container` target",
        );
        None
    }
}
