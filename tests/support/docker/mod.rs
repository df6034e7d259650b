//! Docker for the container tests (#12): a daemon that answers, the base
//! images a generated Dockerfile or compose file names (made locally, see
//! [`base`]), and a guard that removes by id every container and image a
//! test made.
//!
//! Builds use the legacy builder (`DOCKER_BUILDKIT=0`, what a Docker 28
//! client without buildx falls back to) and the host's network, since cargo
//! in the build fetches crates. Containers are reached on ports published
//! on 127.0.0.1 or with `--network host`, never by bridge address.

mod base;

pub use base::{base_image, from_images};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::debian::Lock;
use super::deploy::{run, tool};
use super::{cargo, generate, manage};

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

/// The project deploy_container and deploy_compose both build, as in
/// production: collectstatic's hashed files and manifest built into
/// target/ (which .dockerignore otherwise leaves out), and the Cargo.lock a
/// project commits (the build is `--locked`). Both make it alike, so the
/// build stages one test made serve the other from the cache.
pub fn boxed_project() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = generate("boxed");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let manifest = manifest.replace(
        "# static-build-dir = \"target/staticfiles\"",
        "static-build-dir = \"target/staticfiles\"",
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let collect = run(manage()
        .current_dir(&dir)
        .args(["collectstatic", "--quiet"]));
    assert!(collect.status.success(), "{collect:?}");
    let lock = run(cargo(&dir).args(["generate-lockfile", "--quiet"]));
    assert!(lock.status.success(), "{lock:?}");
    (tmp, dir)
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
    tags: Vec<String>,
}

impl Guard {
    /// Makes the base images `dockerfile` names (see [`base_images`]).
    pub fn new(dockerfile: &str) -> Guard {
        Guard {
            keep: base::base_images(dockerfile),
            containers: Vec::new(),
            images: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Tags `image` as `name` (what compose runs), untagged again on drop.
    pub fn tag(&mut self, image: &str, name: &str) {
        docker_ok(&["tag", image, name]);
        self.tags.push(name.to_owned());
    }

    /// `docker build --network host` of `context` (its Dockerfile), with
    /// `extra` arguments; fails the test with the build log on an error.
    ///
    /// One build at a time (this machine has few cores, and cargo in a
    /// build takes them all): the tests that build the same project
    /// (deploy_container, deploy_compose) then find the stages they share
    /// in the cache, while the test that made them still holds them.
    pub fn build(&mut self, context: &Path, extra: &[&str]) -> Build {
        let _one_at_a_time =
            Lock::take(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docker-build.lock"));
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
        for tag in &self.tags {
            let _ = run(docker().args(["image", "rm", "--no-prune", tag]));
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
