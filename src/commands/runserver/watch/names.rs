//! Names the watcher treats specially: editors' scratch files, and the
//! forms of a path manage writes itself.

use std::path::{Path, PathBuf};

/// A path as given (made absolute) and with its directory's links resolved.
pub fn absolute_forms(path: &Path) -> Vec<PathBuf> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let resolved = match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => dir.canonicalize().map(|d| d.join(name)).ok(),
        _ => None,
    };
    std::iter::once(absolute).chain(resolved).collect()
}

/// Names editors write beside the real file: swap, backup and lock files.
pub fn is_editor_junk(name: &str) -> bool {
    name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with('~')
        || name.ends_with(".tmp")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || name == ".DS_Store"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_junk() {
        for junk in [".main.rs.swp", "main.rs~", "4913", ".#main.rs", "#main.rs#"] {
            assert!(is_editor_junk(junk), "{junk}");
        }
        for real in ["main.rs", "site.css", "Cargo.toml"] {
            assert!(!is_editor_junk(real), "{real}");
        }
    }
}
