//! `manage startproject`: names, destinations, templates and the tree it
//! writes. The generated project built and run: `tests/live/startproject.rs`.

use std::fs;
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::{self, manage, tree};

#[test]
fn refused_names_say_why_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("fn", "`fn` is a Rust keyword and cannot be a project name"),
        ("self", "is a Rust keyword"),
        ("std", "standard library crate"),
        ("proc_macro", "standard library crate"),
        ("test", "standard library crate"),
        ("1site", "must start with an ASCII letter"),
        ("_site", "must start with an ASCII letter"),
        ("my site", "` ` is not allowed"),
        ("my.site", "`.` is not allowed"),
        ("café", "`é` is not allowed"),
        ("../evil", "must start with an ASCII letter"),
        ("build", "conflicts with cargo's build directory"),
    ] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("error: ").and(predicate::str::contains(why)))
            .stderr(predicate::str::contains("help:"));
    }
    let long = "a".repeat(65);
    manage()
        .current_dir(tmp.path())
        .args(["startproject", &long])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at most 64"));
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));
}

#[test]
fn a_non_empty_destination_is_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("mysite");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("notes.txt"), "mine").unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "mysite"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "destination `mysite` already exists and is not empty",
        ));
    assert_eq!(tree(tmp.path()), ["mysite/", "mysite/notes.txt"]);
    assert_eq!(fs::read_to_string(dest.join("notes.txt")).unwrap(), "mine");

    fs::write(tmp.path().join("afile"), "x").unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "blog", "afile"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a directory"));
    assert_eq!(fs::read_to_string(tmp.path().join("afile")).unwrap(), "x");
}

#[test]
fn an_empty_destination_directory_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("here");
    fs::create_dir(&dest).unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "blog", "here"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("cd here").and(predicate::str::contains("manage runserver")),
        );
    assert!(dest.join("Cargo.toml").is_file());
}

fn user_template(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn templates_that_escape_the_destination_are_refused() {
    for (file, what) in [
        ("{{ '..' }}/evil.txt.jinja", "contains `..`"),
        ("sub/{{ '..\\u002f..\\u002fevil' }}.jinja", "contains `..`"),
        ("{{ '\\u002ftmp\\u002fevil' }}.jinja", "absolute path"),
    ] {
        let template = user_template(&[("ok.txt", "fine"), (file, "bad")]);
        let tmp = tempfile::tempdir().unwrap();
        manage()
            .current_dir(tmp.path())
            .args(["startproject", "site", "--template"])
            .arg(template.path())
            .assert()
            .code(1)
            .stderr(predicate::str::contains(what));
        assert!(
            tree(tmp.path()).is_empty(),
            "{file}: {:?}",
            tree(tmp.path())
        );
        assert!(!tmp.path().parent().unwrap().join("evil.txt").exists());
    }

    // A symlink that leads out of the template directory.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "do not copy").unwrap();
    let template = user_template(&[("ok.txt", "fine")]);
    std::os::unix::fs::symlink(outside.path().join("secret"), template.path().join("link"))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("outside the template directory"));
    assert!(tree(tmp.path()).is_empty());
}

/// `manage` with its data segment capped: reading a 1 GB file whole
/// would fail the allocation and abort instead of giving a clear error.
fn manage_within(limit: u64) -> assert_cmd::Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = manage();
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_cmd::Command::from_std(cmd)
}

#[test]
fn templates_with_fifos_or_huge_files_are_refused_in_bounded_time_and_memory() {
    // A FIFO with no writer: reading it would block forever.
    let template = user_template(&[("ok.txt", "fine")]);
    support::mkfifo(&template.path().join("pipe"));
    let dest = tempfile::tempdir().unwrap();
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(
                "template file `pipe` is a FIFO (named pipe), not a regular file",
            )
            .and(predicate::str::contains("regular files only")),
        );
    assert!(tree(dest.path()).is_empty(), "{:?}", tree(dest.path()));

    // A 1 GB file (sparse: it costs no disk) under a 256 MiB data limit.
    let template = user_template(&[("ok.txt", "fine")]);
    let huge = fs::File::create(template.path().join("huge.bin")).unwrap();
    huge.set_len(1 << 30).unwrap();
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "template file `huge.bin` is larger than 16 MiB",
        ));
    // Files that fit one by one but not together.
    let template = user_template(&[]);
    for i in 0..5 {
        let f = fs::File::create(template.path().join(format!("part{i}.bin"))).unwrap();
        f.set_len(15 << 20).unwrap();
    }
    manage_within(256 << 20)
        .current_dir(dest.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("under 64 MiB"));
    assert!(tree(dest.path()).is_empty(), "{:?}", tree(dest.path()));
}

#[test]
fn every_accepted_name_gives_a_project_deploy_config_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let long = format!("a{}", "-B".repeat(31) + "c");
    assert_eq!(long.len(), 64);
    for name in ["A", "Main", "Nul-x", "my-Blog", long.as_str()] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .success();
        let out = tmp.path().join(format!("{name}-deploy"));
        manage()
            .current_dir(tmp.path().join(name))
            .args(["deploy-config", "--out"])
            .arg(&out)
            .assert()
            .success();
        let unit = fs::read_to_string(out.join(format!("systemd/{name}@.service"))).unwrap();
        let user = name.to_ascii_lowercase().replace('-', "_");
        let user = &user[..user.len().min(31)];
        assert!(unit.contains(&format!("User={user}\n")), "{name}: {unit}");
    }
    // Names whose derived account is the system's are refused up front.
    for name in ["root", "Nobody", "postgres", "www-data"] {
        manage()
            .current_dir(tmp.path())
            .args(["startproject", name])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "would make the app run as the system account",
            ));
    }
}

#[test]
fn a_failure_half_way_removes_only_what_this_run_created() {
    // The last file's name is too long for the file system: the first files
    // are written, then writing fails for real.
    let template = user_template(&[
        ("a.txt", "a"),
        ("dir/b.txt", "b"),
        ("zz{{ project_name * 100 }}.jinja", "c"),
    ]);

    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("removed what was created"));
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));

    // An empty directory that was there before stays there.
    fs::create_dir(tmp.path().join("keep")).unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "keep", "--template"])
        .arg(template.path())
        .assert()
        .code(1);
    assert_eq!(tree(tmp.path()), ["keep/"]);
}

#[test]
fn a_user_template_is_rendered_with_the_same_context() {
    let template = user_template(&[
        (
            "README.md.jinja",
            "{{ project_name }} {{ crate_name }} {{ manage_version }} {{ secret_key | length }}\n",
        ),
        (
            "conf/{{ crate_name }}.conf.jinja",
            "name={{ project_name }}\n",
        ),
        ("raw.txt", "{{ not rendered }}"),
        (".github/workflows/ci.yml", "on: push\n"),
    ]);
    let script = template.path().join("run.sh");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "my-blog", "--template"])
        .arg(template.path())
        .assert()
        .success();
    let out = tmp.path().join("my-blog");
    assert_eq!(
        tree(&out),
        [
            ".github/",
            ".github/workflows/",
            ".github/workflows/ci.yml",
            "README.md",
            "conf/",
            "conf/my_blog.conf",
            "raw.txt",
            "run.sh"
        ]
    );
    assert_eq!(
        fs::read_to_string(out.join("README.md")).unwrap(),
        format!("my-blog my_blog {} 59\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        fs::read_to_string(out.join("conf/my_blog.conf")).unwrap(),
        "name=my-blog\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("raw.txt")).unwrap(),
        "{{ not rendered }}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(out.join("run.sh")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "executable bit kept");
}

#[test]
fn a_template_error_names_the_file_and_writes_nothing() {
    let template = user_template(&[("a.txt.jinja", "{{ no_such_variable }}"), ("b.txt", "b")]);
    let tmp = tempfile::tempdir().unwrap();
    manage()
        .current_dir(tmp.path())
        .args(["startproject", "site", "--template"])
        .arg(template.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a.txt.jinja").and(predicate::str::contains("undefined")));
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn generated_tree_snapshot() {
    let (_tmp, dir) = support::generate("mysite");
    insta::assert_snapshot!("startproject_tree", tree(&dir).join("\n"));
    insta::assert_snapshot!(
        "startproject_cargo_toml",
        fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    );
    let env = fs::read_to_string(dir.join(".env")).unwrap();
    assert!(env.contains("SECRET_KEY=insecure-"), "{env}");
    // The app's templates are copied as they are, for the app's own
    // minijinja to render: not rendered by manage.
    let welcome = fs::read_to_string(dir.join("templates/welcome.html")).unwrap();
    assert!(
        welcome.contains("{% block title %}{{ project }} is running{% endblock %}"),
        "{welcome}"
    );
    let base = fs::read_to_string(dir.join("templates/base.html")).unwrap();
    assert!(
        base.contains(r#"href="{{ static("css/site.css") }}""#),
        "{base}"
    );
}
