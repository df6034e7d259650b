//! The project name: what cargo and crates.io accept, and what the
//! names `deploy-config` derives from it (unix user, database) allow.

use anyhow::Result;

use crate::error::hinted;
use crate::names;

/// Names cargo and crates.io accept, refused with the reason.
pub fn validate(name: &str) -> Result<()> {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    const RESERVED: &[&str] = &["std", "core", "alloc", "proc_macro", "test"];
    // Cargo refuses these as binary names: they collide with its own
    // directories in `target/`.
    const CARGO_DIRS: &[&str] = &["build", "deps", "examples", "incremental"];
    const WINDOWS: &[&str] = &[
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
        "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    let fix = "choose a name like `mysite` or `my-blog`: ASCII letters, digits, `_` and `-`, starting with a letter";

    if name.is_empty() {
        return Err(hinted("the project name cannot be empty", fix));
    }
    if name.len() > 64 {
        return Err(hinted(
            format!(
                "the project name is {} characters long; crates.io allows at most 64",
                name.len()
            ),
            "choose a shorter name",
        ));
    }
    let first = name.chars().next().unwrap_or_default();
    if !first.is_ascii_alphabetic() {
        return Err(hinted(
            format!(
                "`{}` is not a valid project name: it must start with an ASCII letter, not `{}`",
                name.escape_debug(),
                first.escape_debug()
            ),
            fix,
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(hinted(
            format!(
                "`{}` is not a valid project name: `{}` is not allowed",
                name.escape_debug(),
                bad.escape_debug()
            ),
            fix,
        ));
    }
    let ident = name.replace('-', "_");
    if KEYWORDS.contains(&ident.as_str()) || ident == "Self" {
        return Err(hinted(
            format!("`{name}` is a Rust keyword and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if RESERVED.contains(&ident.as_str()) {
        return Err(hinted(
            format!("`{name}` is the name of a Rust standard library crate and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if CARGO_DIRS.contains(&name) {
        return Err(hinted(
            format!("`{name}` conflicts with cargo's build directory names and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    let account = names::account(name);
    if names::system_account(&account) {
        return Err(hinted(
            format!(
                "`{name}` would make the app run as the system account `{account}` in production \
                 (deploy-config names the app's user and database after the project)"
            ),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    if WINDOWS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(hinted(
            format!("`{name}` is a reserved file name on Windows and cannot be a project name"),
            format!("try `{name}-site` or `my-{name}`"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "mysite",
            "my-site",
            "my_site",
            "a",
            "Blog2",
            "A",
            "Main",
            "Nul-x",
            &"a".repeat(64),
        ] {
            validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "1site",
            "-x",
            "_x",
            "my site",
            "my.site",
            "fn",
            "self",
            "Self",
            "std",
            "proc_macro",
            "proc-macro",
            "test",
            "build",
            "con",
            "root",
            "Root",
            "nobody",
            "postgres",
            "www-data",
            "naïve",
            &"a".repeat(65),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
