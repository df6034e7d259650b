//! What a changed file asks for: a new build, a new build plan, a
//! stylesheet swap, or only a reload of the open tabs.
//!
//! cargo's dep-info of the last good build lists every file the build read
//! (sources, `include_str!` files, build scripts' `rerun-if-changed`
//! paths, which may be directories). A file in none of them, and not one
//! that could become an input by itself (a `.rs` file, a build script,
//! cargo's configuration), is read by the app as it runs (a debug build's
//! templates, a page read from disk), so saving it needs no cargo at all.
//! Until a build has succeeded, and after one failed (its fix may add an
//! input), every file counts as a source.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a change needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cargo.toml or Cargo.lock: read the project again, then build.
    Manifest,
    /// A build input, or a file that may be one: build.
    Code,
    /// Under the static directory and not a build input: swap or reload.
    Static,
    /// Read by the app as it runs: reload the open tabs, no build.
    Runtime,
}

pub fn classify(path: &Path, static_dir: Option<&Path>, inputs: Option<&HashSet<PathBuf>>) -> Kind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(name, "Cargo.toml" | "Cargo.lock") {
        return Kind::Manifest;
    }
    let Some(inputs) = inputs else {
        return if static_dir.is_some_and(|s| path.starts_with(s)) {
            Kind::Static
        } else {
            Kind::Code
        };
    };
    // A `rerun-if-changed` directory covers everything below it.
    if path.ancestors().any(|a| inputs.contains(a)) {
        return Kind::Code;
    }
    if static_dir.is_some_and(|s| path.starts_with(s)) {
        return Kind::Static;
    }
    let may_become_input = path.extension().is_some_and(|e| e == "rs")
        || name.starts_with("rust-toolchain")
        || path.components().any(|c| c.as_os_str() == ".cargo");
    if may_become_input {
        Kind::Code
    } else {
        Kind::Runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> HashSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn inputs_of_the_last_build_and_would_be_inputs_build() {
        let inputs = set(&["/p/src/main.rs", "/p/src/page.html", "/p/migrations"]);
        let kind = |p: &str| classify(Path::new(p), Some(Path::new("/p/static")), Some(&inputs));
        assert_eq!(kind("/p/src/main.rs"), Kind::Code);
        // include_str!'d, and below a rerun-if-changed directory.
        assert_eq!(kind("/p/src/page.html"), Kind::Code);
        assert_eq!(kind("/p/migrations/0002_more.sql"), Kind::Code);
        // Not yet inputs, but they may be once built.
        assert_eq!(kind("/p/src/new_module.rs"), Kind::Code);
        assert_eq!(kind("/p/build.rs"), Kind::Code);
        assert_eq!(kind("/p/.cargo/config.toml"), Kind::Code);
        assert_eq!(kind("/p/rust-toolchain.toml"), Kind::Code);
        assert_eq!(kind("/p/Cargo.toml"), Kind::Manifest);
        assert_eq!(kind("/p/member/Cargo.lock"), Kind::Manifest);
    }

    #[test]
    fn what_the_app_reads_as_it_runs_needs_no_build() {
        let inputs = set(&["/p/src/main.rs", "/p/static/embedded.css"]);
        let kind = |p: &str| classify(Path::new(p), Some(Path::new("/p/static")), Some(&inputs));
        assert_eq!(kind("/p/templates/welcome.html"), Kind::Runtime);
        assert_eq!(kind("/p/.env"), Kind::Runtime);
        assert_eq!(kind("/p/static/css/site.css"), Kind::Static);
        // A static file the build embeds is a source.
        assert_eq!(kind("/p/static/embedded.css"), Kind::Code);
    }

    #[test]
    fn without_a_good_build_everything_but_static_files_builds() {
        let kind = |p: &str| classify(Path::new(p), Some(Path::new("/p/static")), None);
        assert_eq!(kind("/p/templates/welcome.html"), Kind::Code);
        assert_eq!(kind("/p/static/site.css"), Kind::Static);
        assert_eq!(kind("/p/Cargo.toml"), Kind::Manifest);
    }
}
