//! The workspace as the container build sees it, from cargo metadata: the
//! manifests and target sources the dependency layer needs, the binary,
//! the static files, and the way from the output directory back to the
//! build context. `validate` checks every path before a template sees it.

use std::path::{Component, Path, PathBuf};

use super::validate::Workspace;
use crate::project::Project;

pub fn workspace(project: &Project, shared: &crate::settings::Settings, out: &Path) -> Workspace {
    let root = project.workspace_root();
    let rel = |path: &Path| -> String {
        match path.strip_prefix(root) {
            Ok(p) if p.as_os_str().is_empty() => ".".to_owned(),
            Ok(p) => p.to_string_lossy().replace('\\', "/"),
            // Outside the context: validation names it.
            Err(_) => path.to_string_lossy().into_owned(),
        }
    };
    let mut manifests = vec!["Cargo.toml".to_owned()];
    let mut sources = Vec::new();
    let members = project
        .metadata
        .packages
        .iter()
        .filter(|p| project.metadata.workspace_members.contains(&p.id));
    for package in members {
        let manifest = rel(package.manifest_path.as_std_path());
        if !manifests.contains(&manifest) {
            manifests.push(manifest);
        }
        for target in &package.targets {
            let main = target.kind.iter().any(|k| {
                use cargo_metadata::TargetKind::*;
                matches!(k, Bin | CustomBuild | Example | Test | Bench)
            });
            let source = (rel(target.src_path.as_std_path()), main);
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
    }
    let package = project.package();
    let bins = project.bin_names();
    let bin = package
        .default_run
        .as_deref()
        .or_else(|| bins.iter().copied().find(|b| *b == package.name.as_str()))
        .or_else(|| (bins.len() == 1).then(|| bins[0]))
        .map(str::to_owned);
    let inside = |dir: PathBuf| dir.starts_with(root).then(|| rel(&dir));
    let collected = shared
        .static_build_dir
        .is_some()
        .then(|| shared.static_build_dir(project))
        .and_then(inside);
    let static_source = match collected {
        Some(dir) => Some((dir, true)),
        None => {
            let dir = shared.static_dir(project);
            dir.is_dir()
                .then(|| inside(dir))
                .flatten()
                .map(|d| (d, false))
        }
    };
    Workspace {
        package_dir: rel(project.package_dir()),
        bin,
        manifests,
        sources,
        static_source,
        context_from_out: relative(&out.join("container"), root),
        out_dir: match relative(root, out).as_str() {
            up if up == ".." || up.starts_with("../") => None,
            inside => Some(inside.to_owned()),
        },
        lockfile: root.join("Cargo.lock").is_file(),
        version: package.version.to_string(),
        notifies: package
            .dependencies
            .iter()
            .any(|d| matches!(d.name.as_str(), "sd-notify" | "libsystemd" | "systemd")),
    }
}

/// `to` as seen from `from`, both made absolute; `/`-separated.
fn relative(from: &Path, to: &Path) -> String {
    let parts = |p: &Path| -> Vec<String> {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut out: Vec<String> = Vec::new();
        for c in abs.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        out
    };
    let (from, to) = (parts(from), parts(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut way = vec!["..".to_owned(); from.len() - common];
    way.extend(to[common..].iter().cloned());
    if way.is_empty() {
        ".".to_owned()
    } else {
        way.join("/")
    }
}
