//! Which binary runs: refused when ambiguous, `-p` and `--bin` in a
//! workspace.

use super::*;

/// `manage runserver` in `dir`, expected to refuse before serving; bounded
/// in time in case it does not.
fn refused_run(dir: &Path) -> std::process::Output {
    let mut cmd = manage();
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.parent().unwrap().join("target"))
        .args(["runserver", &free_port().to_string()]);
    assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

#[test]
fn an_ambiguous_binary_is_refused_with_the_candidates_and_the_flag() {
    let (_tmp, dir) = fixture("two-bins", &[]);
    let out = refused_run(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for candidate in ["ws-alpha", "ws-beta"] {
        assert!(
            stderr.contains(candidate),
            "{candidate} not listed:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("--bin") || stderr.contains("-p"),
        "no flag named:\n{stderr}"
    );

    // One package with two binaries and no `default-run`.
    let beta = dir.join("beta");
    let manifest = beta.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("default-run = \"ws-beta\"\n", "")).unwrap();
    let out = refused_run(&beta);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for candidate in ["`ws-beta`", "ws-beta-worker"] {
        assert!(
            stderr.contains(candidate),
            "{candidate} not listed:\n{stderr}"
        );
    }
    assert!(stderr.contains("--bin"), "no flag named:\n{stderr}");
}

#[test]
fn dash_p_runs_the_packages_default_binary_in_a_workspace() {
    let mut app = start(
        fixture("two-bins", &[]),
        &["ws-beta"],
        &["-p", "ws-beta"],
        &[],
    );
    app.wait_served("ws-beta v1", FIRST_BUILD);
    assert_sigterm_leaves_nothing(&mut app, &[]);
}

#[test]
fn dash_dash_bin_picks_a_binary_at_the_workspace_root() {
    let mut app = start(
        fixture("two-bins", &[]),
        &["ws-beta-worker"],
        &["--bin", "ws-beta-worker"],
        &[],
    );
    app.wait_served("ws-beta-worker v1", FIRST_BUILD);
    assert_edits_served_without_failures(
        &app,
        "beta/src/bin/ws-beta-worker.rs",
        "ws-beta-worker",
        1,
    );
    assert_sigterm_leaves_nothing(&mut app, &[]);
}
