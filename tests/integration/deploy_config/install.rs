//! install.sh against the machine it runs on: it never changes a directory
//! it did not create (#9).

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;

use super::validation::accepted;
use crate::support::deploy::{run_ok, site, tool};

/// Mode (with the sticky and set-id bits) and owner of `path`.
fn mode_owner(path: &Path) -> (u32, u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid())
}

#[test]
fn install_sh_never_changes_a_directory_it_did_not_create() {
    let s = site("keepmodes");
    let scratch = &s.scratch;
    // Directories that exist before install.sh runs, each with a mode and
    // owner of its own: a sticky shared directory as the prefix, a private
    // static root holding a private file, an ACME webroot and an nginx
    // configuration directory that belong to someone else.
    let nobody = 65534;
    let existing: Vec<(std::path::PathBuf, u32)> = [
        ("shared", 0o1777),
        ("static", 0o700),
        ("acme", 0o711),
        ("nginx-conf", 0o750),
    ]
    .into_iter()
    .map(|(dir, mode)| {
        let path = scratch.join(dir);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).unwrap();
        (path, mode)
    })
    .collect();
    let private = scratch.join("static/private.txt");
    fs::write(&private, "not for nginx").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();

    let out = scratch.join("out");
    let t = |p: &str| scratch.join(p).display().to_string();
    // test_args points static-root at scratch/static.
    let mut args: Vec<String> = s.test_args(18080, 18443);
    args.extend(
        [
            "--prefix",
            &t("shared"),
            "--acme-webroot",
            &t("acme"),
            "--nginx-conf-dir",
            &t("nginx-conf"),
            "--env-file",
            &t("fresh-env/env"),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    accepted(&s, &out, &args);
    fs::create_dir_all(out.join("static/css")).unwrap();
    fs::write(out.join("static/css/site.css"), "body {}").unwrap();

    // The services it would drive are stubs; /etc is an overlay in a mount
    // namespace of its own, so the machine's /etc is never written.
    let stubs = scratch.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    for stub in ["apt-get", "systemctl", "nginx", "nft", "certbot", "sleep"] {
        fs::write(stubs.join(stub), "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(stubs.join(stub), fs::Permissions::from_mode(0o755)).unwrap();
    }
    // install.sh's readiness gate asks each instance for its health path
    // through `timeout 5 bash -c ...`; the stubbed instances answer 200.
    fs::write(
        stubs.join("timeout"),
        "#!/bin/sh\nprintf 'HTTP/1.0 200 OK'\n",
    )
    .unwrap();
    fs::set_permissions(stubs.join("timeout"), fs::Permissions::from_mode(0o755)).unwrap();
    let (upper, work) = (scratch.join("etc-upper"), scratch.join("etc-work"));
    fs::create_dir_all(&upper).unwrap();
    fs::create_dir_all(&work).unwrap();
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for run in 1..=2 {
        run_ok(
            Command::new(tool("unshare", "util-linux"))
                .args(["--mount", "--fork", "--", "sh", "-c"])
                .arg(format!(
                    "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && exec bash \"$0\"",
                    upper.display(),
                    work.display()
                ))
                .arg(out.join("install.sh"))
                .env("PATH", &path)
                .env("CERTBOT_EMAIL", "admin@example.com"),
        );
        for (dir, mode) in &existing {
            assert_eq!(
                mode_owner(dir),
                (*mode, nobody, nobody),
                "run {run} changed {}",
                dir.display()
            );
        }
        assert_eq!(
            mode_owner(&private).0,
            0o600,
            "run {run} re-moded a file it did not write"
        );
        // What it created has the modes it chose; what it copied is readable.
        assert_eq!(mode_owner(&scratch.join("fresh-env")).0, 0o750);
        assert_eq!(
            mode_owner(&scratch.join("nginx-conf/keepmodes/sites")).0,
            0o755
        );
        assert_eq!(mode_owner(&scratch.join("static/css")).0, 0o755);
        assert_eq!(mode_owner(&scratch.join("static/css/site.css")).0, 0o644);
        assert_eq!(
            fs::read_to_string(scratch.join("static/css/site.css")).unwrap(),
            "body {}"
        );
    }
}
