//! An app that needs arguments (a server subcommand, as Loco's
//! `<app>-cli start` and clap-based servers): `manage runserver -- ARGS`
//! and the `app-args` setting (#18).

use super::*;

fn subcommand_app(name: &str) -> (tempfile::TempDir, PathBuf) {
    fixture(
        "subcommand",
        &[("name = \"subcommand\"", &format!("name = \"{name}\""))],
    )
}

#[test]
fn arguments_after_dashes_reach_the_app_at_every_start() {
    let app = start(
        subcommand_app("sub-flag"),
        &["sub-flag"],
        &["--", "serve", "one", "two words"],
        &[],
    );
    app.wait_served("subcommand v1: one|two words", FIRST_BUILD);
    app.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    app.wait_served("subcommand v2: one|two words", REBUILD);
}

#[test]
fn the_app_args_setting_is_used_unless_the_command_line_gives_some() {
    let (tmp, dir) = subcommand_app("sub-setting");
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace(
            "[dependencies]",
            "[package.metadata.manage]\napp-args = [\"serve\", \"from-settings\"]\n\n[dependencies]",
        ),
    )
    .unwrap();
    let app = start((tmp, dir), &["sub-setting"], &[], &[]);
    app.wait_served("subcommand v1: from-settings", FIRST_BUILD);
    let (tmp, dir) = app.stop();
    let app = start(
        (tmp, dir),
        &["sub-setting"],
        &["--", "serve", "from-flag"],
        &[],
    );
    app.wait_served("subcommand v1: from-flag", FIRST_BUILD);
}

#[test]
fn without_its_arguments_the_app_exit_is_reported_with_its_usage() {
    let app = start(subcommand_app("sub-none"), &["sub-none"], &[], &[]);
    let not_ready = app.expect_outcome("not-ready", FIRST_BUILD);
    assert_eq!(not_ready["exit"]["code"], 2, "{not_ready}");
    let tail = not_ready["exit"]["output_tail"].to_string();
    assert!(tail.contains("usage: subcommand serve"), "{not_ready}");
}
