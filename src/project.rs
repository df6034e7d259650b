//! Finding the cargo project and reading `[package.metadata.manage]`.
//!
//! Everything manage knows about a project comes from `cargo metadata`
//! (through cargo_metadata), so workspaces, `--manifest-path`, renamed
//! target directories and path dependencies behave as cargo says they do.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cargo_metadata::{Metadata, MetadataCommand, Package};

use crate::error::hinted;

/// Which project to load: cargo's own `--manifest-path` and `-p`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selector {
    /// Path to Cargo.toml [default: the one cargo finds from the current directory]
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Package to use in a workspace with several
    #[arg(short = 'p', long, value_name = "SPEC")]
    pub package: Option<String>,
}

/// A loaded project: cargo's metadata and the selected package.
#[derive(Debug, Clone)]
pub struct Project {
    pub metadata: Metadata,
    /// Index into `metadata.packages` of the selected package.
    package: usize,
}

impl Project {
    /// Runs `cargo metadata`. With `deps`, the dependency graph is resolved
    /// too (runserver needs local path dependencies); without, only the
    /// workspace's own packages are read.
    pub fn load(selector: &Selector, deps: bool) -> Result<Project> {
        Self::load_for_bin(selector, deps, None)
    }

    /// As [`Project::load`], choosing the package as `cargo run` does: in
    /// a workspace without a root package, the one member that has binary
    /// `bin` (or, without `bin`, the one member with any binary).
    pub fn load_for_bin(selector: &Selector, deps: bool, bin: Option<&str>) -> Result<Project> {
        let mut cmd = MetadataCommand::new();
        if let Some(path) = &selector.manifest_path {
            if !path.is_file() {
                return Err(hinted(
                    format!("manifest `{}` does not exist", path.display()),
                    "pass the path of a Cargo.toml to `--manifest-path`",
                ));
            }
            cmd.manifest_path(path);
        }
        if !deps {
            cmd.no_deps();
        }
        let where_ = selector
            .manifest_path
            .as_ref()
            .map(|p| format!("`{}`", p.display()))
            .unwrap_or_else(|| "the current directory".to_owned());
        let metadata = cmd.exec().map_err(|err| {
            let detail = match err {
                cargo_metadata::Error::CargoMetadata { stderr } => stderr.trim().to_owned(),
                other => other.to_string(),
            };
            anyhow::Error::msg(detail).context(crate::error::Hint {
                message: format!("could not read a cargo project from {where_}"),
                hint: "run manage inside a cargo project, or pass `--manifest-path path/to/Cargo.toml`"
                    .to_owned(),
            })
        })?;
        let package = select_package(&metadata, selector.package.as_deref(), bin)?;
        Ok(Project { metadata, package })
    }

    pub fn package(&self) -> &Package {
        &self.metadata.packages[self.package]
    }

    /// The names of the selected package's binaries.
    pub fn bin_names(&self) -> Vec<&str> {
        self.package()
            .targets
            .iter()
            .filter(|t| t.is_bin())
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The directory of the selected package's Cargo.toml.
    pub fn package_dir(&self) -> &Path {
        self.package()
            .manifest_path
            .parent()
            .expect("a manifest path has a parent")
            .as_std_path()
    }

    pub fn manifest_path(&self) -> &Path {
        self.package().manifest_path.as_std_path()
    }

    pub fn target_dir(&self) -> &Path {
        self.metadata.target_directory.as_std_path()
    }

    pub fn workspace_root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }

    /// `[package.metadata.manage]` of the selected package (JSON null when
    /// absent).
    pub fn settings_value(&self) -> &serde_json::Value {
        &self.package().metadata["manage"]
    }
}

fn select_package(metadata: &Metadata, wanted: Option<&str>, bin: Option<&str>) -> Result<usize> {
    let members: Vec<usize> = metadata
        .packages
        .iter()
        .enumerate()
        .filter(|(_, p)| metadata.workspace_members.contains(&p.id))
        .map(|(i, _)| i)
        .collect();
    let names = || {
        members
            .iter()
            .map(|&i| format!("`{}`", metadata.packages[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = wanted {
        return members
            .iter()
            .copied()
            .find(|&i| metadata.packages[i].name.as_str() == name)
            .ok_or_else(|| {
                hinted(
                    format!("package `{name}` is not a member of this workspace"),
                    format!("choose one of {}", names()),
                )
            });
    }
    if let Some(root) = metadata.root_package() {
        if let Some(i) = metadata.packages.iter().position(|p| p.id == root.id) {
            return Ok(i);
        }
    }
    // A virtual workspace: cargo run looks at the default members.
    let defaults: Vec<usize> = if metadata.workspace_default_members.is_available() {
        members
            .iter()
            .copied()
            .filter(|&i| {
                metadata
                    .workspace_default_members
                    .contains(&metadata.packages[i].id)
            })
            .collect()
    } else {
        members.clone()
    };
    let binaries: Vec<(usize, &str)> = defaults
        .iter()
        .flat_map(|&i| {
            metadata.packages[i]
                .targets
                .iter()
                .filter(|t| t.is_bin())
                .map(move |t| (i, t.name.as_str()))
        })
        .collect();
    let listed = |list: &[(usize, &str)]| {
        list.iter()
            .map(|&(i, b)| format!("`{b}` (package `{}`)", metadata.packages[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(bin) = bin {
        let with: Vec<usize> = binaries
            .iter()
            .filter(|(_, b)| *b == bin)
            .map(|&(i, _)| i)
            .collect();
        return match with.as_slice() {
            [only] => Ok(*only),
            [] => Err(hinted(
                format!("no package in this workspace has a binary named `{bin}`"),
                format!("the binaries are {}", listed(&binaries)),
            )),
            _ => Err(hinted(
                format!("several packages in this workspace have a binary named `{bin}`"),
                format!("pick the package with `-p`: {}", listed(&binaries)),
            )),
        };
    }
    let mut packages: Vec<usize> = binaries.iter().map(|&(i, _)| i).collect();
    packages.dedup();
    match packages.as_slice() {
        [only] => Ok(*only),
        [] => Err(hinted(
            "no package in this workspace has a binary target",
            format!("add a `src/main.rs` to one of {}", names()),
        )),
        _ => Err(hinted(
            format!(
                "this workspace has several binaries and manage cannot tell which one to run: {}",
                listed(&binaries)
            ),
            "pick one with `--bin NAME` (or the package with `-p NAME`), as with `cargo run`",
        )),
    }
}
