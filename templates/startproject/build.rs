//! Build-time inputs cargo cannot see on its own.
//!
//! - `migrations/` is embedded into the binary (`src/db.rs` includes the
//!   list written here), so a new or edited migration rebuilds the app.
//! - `templates/` is embedded only when debug assertions are off (release
//!   builds): a debug build reads the templates from disk at every request,
//!   so an edit of a page must not, and does not, make cargo rebuild.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    embed_migrations(Path::new("migrations"));
    if std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none() {
        minijinja_embed::embed_templates!("templates", &[".html", ".txt", ".xml"][..]);
    }
}

/// Writes `$OUT_DIR/migrations.rs`: one `(file name, contents)` pair per
/// sqlx-style migration (`<version>_<name>.up.sql`, `.down.sql` or `.sql`),
/// sorted by name.
fn embed_migrations(dir: &Path) {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.ends_with(".sql") && !name.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    for name in &names {
        let version = name.split_once('_').map(|(v, _)| v);
        if !version.is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) {
            panic!(
                "migrations/{name}: a migration is named <version>_<name>.up.sql (and .down.sql) \
                 or <version>_<name>.sql, the version a number (`manage makemigrations NAME` \
                 writes one); rename or remove the file"
            );
        }
    }
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::from("&[\n");
    for name in &names {
        let path = Path::new(&root).join(dir).join(name);
        writeln!(out, "    ({name:?}, include_str!({:?})),", path.display()).unwrap();
    }
    out.push_str("]\n");
    let dest =
        Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    std::fs::write(dest, out).expect("write migrations.rs");
}
