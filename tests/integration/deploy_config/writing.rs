//! How `manage deploy-config` writes: `--check` (a diff, exit 1 when the
//! files on disk differ), `--force` (overwrite what was edited by hand),
//! `--only` (some kinds of file).

use std::fs;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::deploy::site;
use crate::support::{manage, tree};

#[test]
fn check_force_and_only() {
    let s = site("cisite");
    let out = s.project.join("deploy");
    // --check on nothing: everything is missing.
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("+++"))
        .stderr(predicate::str::contains("14 of 14 files differ"));
    assert!(!out.exists(), "--check wrote something");

    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .success();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .success()
        .stderr(predicate::str::contains("up to date"));

    // A hand edit: --check shows it, a plain run refuses, --force restores.
    let conf = out.join("nginx/nginx.conf");
    let generated = fs::read_to_string(&conf).unwrap();
    let edited = generated.replace("worker_connections 4096;", "worker_connections 8;");
    fs::write(&conf, &edited).unwrap();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--check"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("-    worker_connections 8;")
                .and(predicate::str::contains("+    worker_connections 4096;")),
        )
        .stderr(predicate::str::contains("1 of 14 files differ"));
    manage()
        .current_dir(&s.project)
        .arg("deploy-config")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nginx.conf").and(predicate::str::contains("`--force`")));
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited);
    // A changed setting through a flag is a difference too.
    manage()
        .current_dir(&s.project)
        .args([
            "deploy-config",
            "--check",
            "--instances",
            "3",
            "--only",
            "systemd",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "+Wants=cisite@8003.socket cisite@8003.service",
        ));
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--force"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&conf).unwrap(), generated);
    let leftovers: Vec<String> = tree(&out)
        .into_iter()
        .filter(|p| p.contains(".manage-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A file the settings no longer produce is reported by --check and
    // warned about by a run, never silently left to be deployed.
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--force"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "https.conf` is no longer generated",
        ));
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--check"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "only on disk, no longer generated",
        ))
        .stderr(predicate::str::contains("https.conf` (not generated)"));
    fs::remove_file(out.join("nginx/cisite/sites/https.conf")).unwrap();
    // A layout change leaves whole machine directories behind.
    fs::create_dir_all(out.join("web-1/nginx")).unwrap();
    fs::write(out.join("web-1/nginx/nginx.conf"), "old").unwrap();
    // Files that are not deploy-config's are none of its business.
    fs::write(out.join("NOTES.md"), "mine").unwrap();
    fs::create_dir_all(out.join("docs")).unwrap();
    fs::write(out.join("docs/x.txt"), "mine").unwrap();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--check"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("web-1/nginx/nginx.conf` (not generated)")
                .and(predicate::str::contains("NOTES.md").not())
                .and(predicate::str::contains("x.txt").not()),
        );
    fs::remove_dir_all(out.join("web-1")).unwrap();
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--tls", "off", "--check"])
        .assert()
        .success();

    // --only writes only the chosen kinds.
    let only = s.scratch.join("only");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--only", "systemd,readme", "--out"])
        .arg(&only)
        .assert()
        .success();
    assert_eq!(
        tree(&only),
        [
            "README.md",
            "systemd/",
            "systemd/cisite-alert@.service",
            "systemd/cisite-migrate.service",
            "systemd/cisite.target",
            "systemd/cisite@.service",
            "systemd/cisite@.socket"
        ]
    );
}
