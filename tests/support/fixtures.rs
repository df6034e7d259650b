//! Projects for runserver to serve that manage did not generate: copies of
//! `tests/fixtures/<shape>` and one-file std-only apps.
//!
//! Each copy builds in a target directory of its own (see
//! `runserver::Start::new`): copies share a package name, and in one
//! target dir cargo could take one copy's build for another's. Renames
//! remain for tests that tell packages apart by name.

use std::fs;
use std::path::{Path, PathBuf};

/// A copy of `tests/fixtures/<shape>` in a temp dir, with `renames`
/// applied to every `Cargo.toml`. Symlinks (the shared `http.rs`) are
/// copied as the files they point to.
pub fn copy(shape: &str, renames: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    fn copy_dir(from: &Path, to: &Path, renames: &[(&str, &str)]) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap().flatten() {
            let src = entry.path();
            let dst = to.join(entry.file_name());
            // `metadata` follows symlinks.
            if fs::metadata(&src).unwrap().is_dir() {
                copy_dir(&src, &dst, renames);
            } else if entry.file_name() == "Cargo.toml" {
                let mut text = fs::read_to_string(&src).unwrap();
                for (from, to) in renames {
                    text = text.replace(from, to);
                }
                fs::write(&dst, text).unwrap();
            } else {
                fs::copy(&src, &dst).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(shape);
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(shape);
    copy_dir(&source, &dir, renames);
    (tmp, dir)
}

/// The std-only echo app (`tests/fixtures/echo-app`): what the dev proxy
/// passes through, in a build of a second.
pub fn echo_app() -> (tempfile::TempDir, PathBuf) {
    copy("echo-app", &[])
}

/// The echo app as package `name`, with a static/ directory (a
/// stylesheet and an icon) for the dev proxy to serve.
pub fn echo_with_static(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = copy(
        "echo-app",
        &[("name = \"echo-app\"", &format!("name = \"{name}\""))],
    );
    fs::create_dir_all(dir.join("static/css")).unwrap();
    fs::write(
        dir.join("static/css/site.css"),
        "body { font-family: sans-serif; }\nh1 { color: #333; }\n",
    )
    .unwrap();
    fs::write(
        dir.join("static/favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"/>\n",
    )
    .unwrap();
    (tmp, dir)
}

/// A throwaway std-only package `name` with `main` as its src/main.rs.
pub fn std_app(name: &str, main: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n"
        ),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), main).unwrap();
    (tmp, dir)
}
