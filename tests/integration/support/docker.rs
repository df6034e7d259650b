//! Docker for the container tests (#12): a daemon that answers, the base
//! images a generated Dockerfile names, and a guard that removes by id
//! every container and image a test made.
//!
//! No image registry is reachable here, so the images in the `FROM` lines
//! are built locally under the names the Dockerfile uses, from Debian trees
//! (`debootstrap`, cached in the target directory) piped into
//! `docker import`: the runtime image is Debian 12 minbase without docs
//! (like `debian:bookworm-slim`), nginx's the same with Debian's nginx, the
//! builder the same plus gcc, libc6-dev, ca-certificates (with this
//! machine's authorities), pkg-config and this machine's Rust toolchain,
//! laid out like the official `rust` image. Each is made once (a file lock
//! serializes tests and test processes) and kept while its recipe is
//! unchanged, like the trees.
//!
//! Builds use the legacy builder (`DOCKER_BUILDKIT=0`, what a Docker 28
//! client without buildx falls back to) and the host's network, since cargo
//! in the build fetches crates. Containers are reached on ports published
//! on 127.0.0.1 or with `--network host`, never by bridge address.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::debian::{debootstrap_tree, key, Lock};
use super::deploy::{run, tool};

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

/// `docker`, once a daemon has answered; a failed test saying how to start
/// one otherwise (never a skip: `.ci/run` starts it).
pub fn docker() -> Command {
    static ANSWERS: OnceLock<Result<String, String>> = OnceLock::new();
    let answer = ANSWERS.get_or_init(|| {
        let out = run(Command::new(tool("docker", "docker.io")).args([
            "version",
            "--format",
            "{{.Server.Version}}",
        ]));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    });
    if let Err(err) = answer {
        panic!("no Docker daemon answers; start dockerd (.ci/run does): {err}");
    }
    let mut cmd = Command::new(tool("docker", "docker.io"));
    cmd.env("DOCKER_BUILDKIT", "0");
    cmd
}

/// Runs `docker ARGS`, failing the test unless it exits 0; its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = run(docker().args(args));
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

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
/// ids, which a [`Guard`] never removes.
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let _lock = Lock::take(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docker-base.lock"));
    from_images(dockerfile)
        .iter()
        .map(|image| base_image(image))
        .collect()
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
        // Debian's nginx (1.22) stands in for the official image's: the
        // tests copy files into it and run nothing in it.
        "nginx" => (
            "nginx",
            debootstrap_tree("docker-nginx", "nginx", &[]),
            String::new(),
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
fn base_image(image: &str) -> String {
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
        "debian" | "nginx" => {
            if kind == "nginx" {
                changes[0] = "CMD [\"nginx\", \"-g\", \"daemon off;\"]".to_owned();
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

/// The full id of an image or container.
pub fn id_of(name: &str) -> String {
    docker_ok(&["inspect", "--format", "{{.Id}}", name])
}

/// A finished `docker build`.
pub struct Build {
    pub image: String,
    pub log: String,
    pub took: Duration,
}

/// What a test made; removed by id when it drops, also after a failed
/// assertion: containers first, then images, never the base images.
pub struct Guard {
    keep: Vec<String>,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Guard {
    /// Makes the base images `dockerfile` names (see [`base_images`]).
    pub fn new(dockerfile: &str) -> Guard {
        Guard {
            keep: base_images(dockerfile),
            containers: Vec::new(),
            images: Vec::new(),
        }
    }

    /// `docker build --network host` of `context` (its Dockerfile), with
    /// `extra` arguments; fails the test with the build log on an error.
    pub fn build(&mut self, context: &Path, extra: &[&str]) -> Build {
        let iidfile = tempfile::NamedTempFile::new().unwrap();
        let started = Instant::now();
        let out = run(docker()
            .args(["build", "--network", "host", "--force-rm", "--iidfile"])
            .arg(iidfile.path())
            .args(extra)
            .arg(context));
        let took = started.elapsed();
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        // Every layer the build made, cached or not: the legacy builder
        // keeps the intermediate images of every stage.
        for line in log.lines() {
            if let Some(id) = line.trim().strip_prefix("---> ") {
                if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.images.push(id.to_owned());
                }
            }
        }
        assert!(
            out.status.success(),
            "docker build failed ({}):\n{log}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let image = std::fs::read_to_string(iidfile.path()).unwrap();
        self.images.push(image.trim().to_owned());
        Build {
            image: image.trim().to_owned(),
            log,
            took,
        }
    }

    /// `docker run --detach ARGS`: the container's id.
    pub fn run(&mut self, args: &[&str]) -> String {
        let mut full = vec!["run", "--detach"];
        full.extend(args);
        let out = run(docker().args(&full));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !id.is_empty() {
            self.containers.push(id.clone());
        }
        assert!(
            out.status.success(),
            "docker {full:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        id
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for id in self.containers.iter().rev() {
            let _ = run(docker().args(["rm", "--force", "--volumes", id]));
        }
        // Newest first, and again while that removes some: an image with
        // children (a layer both builds share) goes once they are gone.
        // Tagged images are never ours (the base images are kept anyway).
        let mut left: Vec<&String> = Vec::new();
        for id in self.images.iter().rev() {
            let base = self.keep.iter().any(|k| short(k).starts_with(short(id)));
            if !base && !left.contains(&id) {
                left.push(id);
            }
        }
        for _ in 0..5 {
            let before = left.len();
            left.retain(|id| {
                let tags =
                    run(docker().args(["image", "inspect", "--format", "{{len .RepoTags}}", id]));
                if !tags.status.success() {
                    return false; // gone with a child
                }
                if String::from_utf8_lossy(&tags.stdout).trim() != "0" {
                    return false;
                }
                !run(docker().args(["image", "rm", id])).status.success()
            });
            if left.is_empty() || left.len() == before {
                break;
            }
        }
    }
}

/// An id without its `sha256:` prefix.
fn short(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}
