//! The command line itself: help, version, completions, exit codes, colour.

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::manage;

#[test]
fn help_lists_every_subcommand_and_global_option() {
    manage().arg("--help").assert().success().stdout(
        predicate::str::contains("startproject")
            .and(predicate::str::contains("runserver"))
            .and(predicate::str::contains("deploy-config"))
            .and(predicate::str::contains("completions"))
            .and(predicate::str::contains("--verbose"))
            .and(predicate::str::contains("--quiet"))
            .and(predicate::str::contains("--color <WHEN>")),
    );
}

#[test]
fn version_is_the_crate_version() {
    manage()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("manage {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    manage()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: manage"));
}

#[test]
fn usage_errors_exit_2() {
    manage().arg("frobnicate").assert().code(2);
    manage()
        .args(["--color", "sometimes", "startproject", "x"])
        .assert()
        .code(2);
    manage().args(["startproject"]).assert().code(2);
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef manage"),
        ("fish", "complete -c manage"),
    ] {
        manage()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker).and(predicate::str::contains("startproject")));
    }
}

#[test]
fn completions_into_a_closed_pipe_exit_quietly_with_success() {
    use std::os::fd::{FromRawFd, OwnedFd};
    // A pipe whose read end is already closed: every write fails with EPIPE,
    // as `manage completions bash | true` may.
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors, which we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let out = manage()
        .args(["completions", "bash"])
        .stdout(write)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn errors_are_plain_without_a_terminal_and_coloured_on_request() {
    let plain = manage().args(["startproject", "fn"]).assert().code(1);
    let stderr = String::from_utf8(plain.get_output().stderr.clone()).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour off a terminal: {stderr:?}"
    );

    let coloured = manage()
        .args(["--color", "always", "startproject", "fn"])
        .assert()
        .code(1);
    let stderr = String::from_utf8(coloured.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("\u{1b}["), "colour was forced: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
