//! deploy-config for the first month of operation (#15): the settings that
//! shape the limits refused when they are wrong. With a real nginx in
//! front of the built app: `tests/live/deploy_config/ops.rs`.

use std::fs;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::deploy::site;
use crate::support::manage;

#[test]
fn bad_ops_settings_are_refused_and_nothing_is_written() {
    let s = site("badops");
    for (args, why) in [
        (
            vec!["--admin-network", "10.0.0.0/08"],
            "`admin-networks[0]` = `10.0.0.0/08`",
        ),
        (
            vec!["--real-ip-from", "proxy.example"],
            "`real-ip-from[0]` = `proxy.example`",
        ),
    ] {
        manage()
            .current_dir(&s.project)
            .arg("deploy-config")
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(why));
    }
    for (paths, why) in [
        (
            r#"{ "login" = { rate = "1r/s" } }"#,
            "a path starts with `/`",
        ),
        (
            r#"{ "/a b" = { rate = "1r/s" } }"#,
            "a space is not allowed",
        ),
        (
            r#"{ "/" = { rate = "1r/s" } }"#,
            "use `rate-limit` for that",
        ),
        (
            r#"{ "/static/x" = { rate = "1r/s" } }"#,
            "overlaps the static files",
        ),
        (
            r#"{ "/login" = { rate = "0r/s" } }"#,
            "expected at least 1 request",
        ),
        (
            r#"{ "/login" = { rate = "1r/s", burst = 0 } }"#,
            "expected 1 to 100000",
        ),
        (
            r#"{ "/login" = { rate = "fast" } }"#,
            "rate-limit-paths.\"/login\".rate",
        ),
    ] {
        let toml = fs::read_to_string(s.project.join("Cargo.toml")).unwrap();
        let changed = toml.replace(
            "# rate-limit-paths = { \"/login\" = { rate = \"10r/m\", burst = 5 } }",
            &format!("rate-limit-paths = {paths}"),
        );
        assert_ne!(toml, changed);
        fs::write(s.project.join("Cargo.toml"), &changed).unwrap();
        manage()
            .current_dir(&s.project)
            .arg("deploy-config")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(why));
        fs::write(s.project.join("Cargo.toml"), &toml).unwrap();
    }
    assert!(!s.project.join("deploy").exists());
}
