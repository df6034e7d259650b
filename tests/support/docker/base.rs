//! The base images, made locally: no image registry is reachable here, so
//! the images in the `FROM` lines are built under the names the Dockerfile
//! uses, from Debian trees (`debootstrap`, cached in the target directory)
//! piped into `docker import`: the runtime image is Debian 12 minbase
//! without docs (like `debian:bookworm-slim`), nginx's the same with
//! Debian's nginx, the builder the same plus gcc, libc6-dev,
//! ca-certificates (with this machine's authorities), pkg-config and this
//! machine's Rust toolchain, laid out like the official `rust` image. Each
//! is made once (a file lock serializes tests and test processes) and kept
//! while its recipe is unchanged, like the trees.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::super::debian::{debootstrap_tree, key, Lock};
use super::super::deploy::run;
use super::{docker, id_of};

/// Labels a base image with the recipe it was built from.
const RECIPE_LABEL: &str = "manage.test.recipe";
/// The builder's packages besides minbase, as in the official image.
const BUILDER_PACKAGES: &str = "gcc,libc6-dev,ca-certificates,pkg-config";
/// This machine's certificate authorities, the builder's too: cargo in the
/// build fetches crates through this network, which may intercept TLS with
/// an authority of its own (as a company network can: a real build there
/// needs the same).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The images a Dockerfile's `FROM` lines name, in order, leaving out the
/// stages it builds itself (`FROM builder`).
pub fn from_images(dockerfile: &str) -> Vec<String> {
    let mut stages = HashSet::new();
    let mut images = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let image = words.next().expect("FROM names an image").to_owned();
        assert!(!image.contains('$'), "FROM with a build argument: {line}");
        if !stages.contains(&image) && !images.contains(&image) {
            images.push(image);
        }
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS")) {
            stages.insert(words.next().expect("a stage name after AS").to_owned());
        }
    }
    images
}

/// Makes the base images `dockerfile` names unless they are there; their
/// ids, which a [`Guard`](super::Guard) never removes.
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let _lock = lock();
    from_images(dockerfile)
        .iter()
        .map(|image| make(image))
        .collect()
}

/// Makes one base image (PostgreSQL's, which compose runs) unless it is
/// there; its id.
pub fn base_image(image: &str) -> String {
    let _lock = lock();
    make(image)
}

fn lock() -> Lock {
    Lock::take(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docker-base.lock"))
}

/// What a base image is made of: its kind, its Debian tree, and a key of
/// its recipe (a changed recipe rebuilds the image).
fn recipe(image: &str) -> (&'static str, PathBuf, String) {
    let repo = image.split(':').next().unwrap_or(image);
    let (kind, tree, toolchain) = match repo.rsplit('/').next().unwrap_or(repo) {
        "debian" => (
            "debian",
            debootstrap_tree("docker-debian", "", &[]),
            String::new(),
        ),
        // Debian's nginx (1.22) stands in for the official image's, with
        // its `nginx` user (compose runs it; `docker import` cannot set the
        // official image's STOPSIGNAL SIGQUIT, so it stops on SIGTERM).
        "nginx" => (
            "nginx",
            debootstrap_tree("docker-nginx", "nginx", &[]),
            "user nginx".to_owned(),
        ),
        // Debian's PostgreSQL 15 with an entrypoint that does what the
        // official image's does with the variables compose.yaml sets.
        "postgres" => (
            "postgres",
            debootstrap_tree("docker-postgres", "postgresql-15", &[]),
            POSTGRES_ENTRYPOINT.to_owned(),
        ),
        "rust" => {
            let version = run(Command::new("rustc").arg("-vV"));
            let toolchain = format!(
                "{} {} {}",
                sysroot().display(),
                String::from_utf8_lossy(&version.stdout),
                std::fs::read_to_string(CA_BUNDLE).unwrap_or_default()
            );
            let tree = debootstrap_tree("docker-rust", BUILDER_PACKAGES, &[]);
            ("rust", tree, toolchain)
        }
        _ => panic!("no recipe for the base image `{image}`; add one to support/docker.rs"),
    };
    let key = key(&[kind, &tree.to_string_lossy(), &toolchain]);
    (kind, tree, format!("{key:016x}"))
}

fn sysroot() -> PathBuf {
    let out = run(Command::new("rustc").args(["--print", "sysroot"]));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[allow(clippy::print_stderr)] // how long the build took, for whoever watches
fn make(image: &str) -> String {
    let (kind, tree, recipe) = recipe(image);
    let label = format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}");
    let out = run(docker().args(["image", "inspect", "--format", &label, image]));
    let existing = out.status.success().then(|| id_of(image));
    if existing.is_some() && String::from_utf8_lossy(&out.stdout).trim() == recipe {
        return id_of(image);
    }
    let started = Instant::now();
    let staging = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-c"]);
    let mut changes = vec!["CMD [\"bash\"]".to_owned(), format!("ENV PATH={PATH}")];
    match kind {
        "debian" | "nginx" | "postgres" => {
            if kind == "postgres" {
                let bin = staging.path().join("usr/local/bin");
                std::fs::create_dir_all(&bin).unwrap();
                let entrypoint = bin.join("docker-entrypoint.sh");
                std::fs::write(&entrypoint, POSTGRES_ENTRYPOINT).unwrap();
                std::fs::set_permissions(&entrypoint, std::fs::Permissions::from_mode(0o755))
                    .unwrap();
                changes = vec![
                    "ENTRYPOINT [\"docker-entrypoint.sh\"]".to_owned(),
                    "CMD [\"postgres\"]".to_owned(),
                    format!("ENV PATH=/usr/lib/postgresql/15/bin:{PATH}"),
                    "ENV PGDATA=/var/lib/postgresql/data".to_owned(),
                ];
                // Not the cluster Debian's package made: the entrypoint
                // makes one in PGDATA.
                tar.args([
                    "--exclude=./var/lib/postgresql/*",
                    "--exclude=./etc/postgresql/*",
                ])
                .arg("-C")
                .arg(staging.path())
                .arg("usr/local/bin/docker-entrypoint.sh");
            }
            if kind == "nginx" {
                changes[0] = "CMD [\"nginx\", \"-g\", \"daemon off;\"]".to_owned();
                // The official image's worker user, which the generated
                // nginx.conf names: the tree's account files plus `nginx`.
                let etc = staging.path().join("etc");
                std::fs::create_dir_all(&etc).unwrap();
                for (file, line) in [
                    (
                        "passwd",
                        "nginx:x:101:101:nginx:/nonexistent:/usr/sbin/nologin\n",
                    ),
                    ("group", "nginx:x:101:\n"),
                ] {
                    let text = std::fs::read_to_string(tree.join("etc").join(file)).unwrap();
                    assert!(
                        !text.contains(":101:"),
                        "id 101 is taken in the tree's {file}"
                    );
                    std::fs::write(etc.join(file), text + line).unwrap();
                    tar.arg(format!("--exclude=./etc/{file}"));
                }
                tar.arg("-C")
                    .arg(staging.path())
                    .args(["etc/passwd", "etc/group"]);
            }
            // What the slim image leaves out.
            for dir in ["doc", "man", "info", "locale"] {
                tar.arg(format!("--exclude=./usr/share/{dir}/*"));
            }
            tar.arg("--exclude=./var/lib/apt/lists/*")
                .arg("-C")
                .arg(tree)
                .arg(".");
        }
        _ => {
            let (toolchain, version) = toolchain_name();
            // The toolchain under RUSTUP_HOME, its commands on PATH through
            // CARGO_HOME/bin, as rustup lays them out in the official image.
            let home = format!("usr/local/rustup/toolchains/{toolchain}");
            let bin = staging.path().join("usr/local/cargo/bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::create_dir_all(staging.path().join(&home)).unwrap();
            for command in ["cargo", "rustc", "rustdoc"] {
                std::os::unix::fs::symlink(format!("/{home}/bin/{command}"), bin.join(command))
                    .unwrap();
            }
            let sysroot = sysroot();
            let relative = sysroot
                .strip_prefix("/")
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Positional: leaves out the tree's bundle, not this machine's
            // (named without `./`).
            tar.arg(format!("--exclude=.{CA_BUNDLE}"))
                .arg("-C")
                .arg(tree)
                .arg(".")
                .arg("-C")
                .arg("/")
                .arg(&CA_BUNDLE[1..])
                .arg("-C")
                .arg(staging.path())
                // Not `usr/local`: docker import refuses a path twice.
                .args(["usr/local/cargo", "usr/local/rustup"])
                // Only member names: `S` leaves symbolic link targets alone.
                .arg(format!("--transform=s,^{relative}/,{home}/,S"))
                .arg("-C")
                .arg("/")
                .args(["bin", "lib", "libexec"].map(|d| format!("{relative}/{d}")));
            changes.extend([
                "ENV RUSTUP_HOME=/usr/local/rustup".to_owned(),
                "ENV CARGO_HOME=/usr/local/cargo".to_owned(),
                format!("ENV PATH=/usr/local/cargo/bin:{PATH}"),
                format!("ENV RUST_VERSION={version}"),
            ]);
        }
    }
    changes.push(format!("LABEL {RECIPE_LABEL}={recipe}"));
    let mut tar = tar.stdout(Stdio::piped()).spawn().expect("run tar");
    let mut import = docker();
    import.arg("import");
    for change in &changes {
        import.arg("--change").arg(change);
    }
    import
        .args(["-", image])
        .stdin(Stdio::from(tar.stdout.take().unwrap()));
    let out = run(&mut import);
    // The pipe's last reader closes with the command: tar ends, also when
    // the import failed half way.
    drop(import);
    let tarred = tar.wait().unwrap();
    assert!(
        out.status.success(),
        "docker import {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tarred.success(), "tar for `{image}` failed");
    let id = id_of(image);
    if let Some(old) = existing.filter(|old| *old != id) {
        // The image of an older recipe; containers of it may remain.
        let _ = run(docker().args(["image", "rm", &old]));
    }
    eprintln!("base image {image} made in {:.1?}", started.elapsed());
    id
}

/// The toolchain's directory name and version, as rustup names them
/// (`1.95.0-x86_64-unknown-linux-gnu`, `1.95.0`).
fn toolchain_name() -> (String, String) {
    let out = run(Command::new("rustc").arg("-vV"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` in rustc -vV:\n{text}"))
            .trim()
            .to_owned()
    };
    let (release, host) = (field("release:"), field("host:"));
    (format!("{release}-{host}"), release)
}

/// The official postgres image's entrypoint, for the variables compose.yaml
/// sets: as root it hands PGDATA to `postgres` and runs itself as that
/// user; a first start makes the cluster (the superuser `POSTGRES_USER`
/// with the password in `POSTGRES_PASSWORD_FILE`, password logins from
/// the network) and `POSTGRES_DB`; then the server listens on every
/// address of its container.
const POSTGRES_ENTRYPOINT: &str = r#"#!/bin/sh
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
if [ "$1" != postgres ]; then
    exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    initdb --username="$user" --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth-local=trust --auth-host=scram-sha-256
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    db="${POSTGRES_DB:-$user}"
    if [ "$db" != postgres ]; then
        pg_ctl --wait --options="-c listen_addresses=''" start
        psql --username="$user" --dbname=postgres --set=ON_ERROR_STOP=1 \
            --command="CREATE DATABASE \"$db\""
        pg_ctl --wait --mode=fast stop
    fi
fi
exec "$@" -c listen_addresses='*'
"#;
