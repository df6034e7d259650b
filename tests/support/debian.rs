//! Debian 12 file trees made by `debootstrap --variant=minbase`, cached in
//! the target directory per package list: the root of the systemd
//! containers (`deploy_config::systemd`) and of the base images the container tests
//! build (`docker`), since no image registry is reachable here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::deploy::{run, tool};

const SUITE: &str = "bookworm";

/// The Debian mirror apt on this machine already uses.
fn mirror() -> String {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| fs::read_to_string("/etc/apt/sources.list"))
        .unwrap_or_default();
    sources
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .find(|w| w.starts_with("http") && w.contains("/debian") && !w.contains("security"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_owned()
}

/// FNV-1a: a cache key that stays the same across Rust versions.
pub fn key(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in parts.join("\n").bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    hash
}

/// An exclusive lock on a file, released when the file closes on drop.
pub struct Lock(#[allow(dead_code)] fs::File);

impl Lock {
    pub fn take(path: &Path) -> Lock {
        use std::os::fd::AsRawFd;
        let file = fs::File::create(path).unwrap();
        // SAFETY: flock(2) on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Lock(file)
    }
}

/// A cached `debootstrap --variant=minbase` tree of Debian 12 named
/// `name-KEY` in the target directory: `include` (packages, comma-separated)
/// installed, `prefetch` downloaded into apt's cache (nothing, and no
/// package lists, when empty). Built once per package list, under a lock
/// that parallel tests and test processes share; `name` must not be the
/// prefix of another tree's name, since trees of older lists are removed.
#[allow(clippy::print_stderr)] // how long the build took, for whoever watches
pub fn debootstrap_tree(name: &str, include: &str, prefetch: &[&str]) -> PathBuf {
    let mirror = mirror();
    let mut parts = vec![SUITE, include, mirror.as_str()];
    parts.extend(prefetch);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let current = format!("{name}-{:016x}", key(&parts));
    let dir = base.join(&current);
    let _lock = Lock::take(&dir.with_extension("lock"));
    if dir.join(".complete").is_file() {
        return dir;
    }
    // Trees of older package lists are of no more use.
    for entry in fs::read_dir(&base).unwrap().flatten() {
        let stale = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&format!("{name}-")) && !file.starts_with(&current) {
            let _ = fs::remove_dir_all(&stale).or_else(|_| fs::remove_file(&stale));
        }
    }
    let partial = dir.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    let _ = fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut debootstrap = Command::new(tool("debootstrap", "debootstrap"));
    debootstrap.arg("--variant=minbase");
    if !include.is_empty() {
        debootstrap.arg(format!("--include={include}"));
    }
    let out = run(debootstrap.arg(SUITE).arg(&partial).arg(&mirror));
    assert!(
        out.status.success(),
        "debootstrap failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // apt in the container uses the same sources as this machine.
    if Path::new("/etc/apt/sources.list.d/debian.sources").is_file() {
        fs::copy(
            "/etc/apt/sources.list.d/debian.sources",
            partial.join("etc/apt/sources.list.d/debian.sources"),
        )
        .unwrap();
        let _ = fs::remove_file(partial.join("etc/apt/sources.list"));
    }
    let chroot = |args: &[&str]| {
        let out = run(Command::new("chroot")
            .arg(&partial)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        assert!(
            out.status.success(),
            "chroot {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !prefetch.is_empty() {
        chroot(&["apt-get", "update", "-q"]);
        let mut install = vec![
            "apt-get",
            "install",
            "-y",
            "-q",
            "--download-only",
            "--no-install-recommends",
        ];
        install.extend(prefetch);
        chroot(&install);
    }
    fs::write(partial.join(".complete"), "").unwrap();
    fs::rename(&partial, &dir).unwrap();
    eprintln!(
        "debian 12 tree {name} built in {:.0?}: {}",
        started.elapsed(),
        dir.display()
    );
    dir
}
