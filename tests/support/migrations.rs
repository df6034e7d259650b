//! The migrate tests' project: not a scaffold, with sqlx's simple-style
//! migrations in a directory of its own choosing.

use std::fs;
use std::path::PathBuf;

/// A cargo project that is not a scaffold, with sqlx's simple-style
/// migrations in a directory of its own choosing.
pub fn plain_project(settings: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plain");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("db/migrations")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.manage]\nmigrations-dir = \"db/migrations\"\n{settings}"
        ),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(
        dir.join("db/migrations/1_create_items.sql"),
        "CREATE TABLE items (name TEXT NOT NULL);\n",
    )
    .unwrap();
    (tmp, dir)
}

/// What `assert` printed on stdout.
pub fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}
