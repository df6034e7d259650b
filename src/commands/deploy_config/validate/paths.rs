//! Where the path settings may not point (#9, item 7).
//!
//! install.sh creates directories, copies static files and installs the
//! binary at these paths, and nginx serves two of them to anyone. So a
//! path that names a system directory (`/etc`, `/tmp`), a well-known
//! system file (`/etc/passwd`) or a place the system owns (`/proc`, a
//! package's binary directory) is refused for every setting, and no path
//! may lie inside a directory nginx serves.

use super::super::checks::Problems;

/// Directories shared by the whole system: no setting may name one of
/// them (a path below them is fine: `/etc/NAME/env`, `/opt/NAME`).
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/default",
    "/etc/pam.d",
    "/etc/security",
    "/etc/ssh",
    "/etc/ssl",
    "/etc/ssl/certs",
    "/etc/ssl/private",
    "/etc/sudoers.d",
    "/etc/systemd",
    "/etc/systemd/system",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Trees that belong to the kernel, the boot loader or root's home:
/// nothing of the app's lives at or below them.
const SYSTEM_TREES: &[&str] = &["/boot", "/dev", "/proc", "/root", "/sys"];

/// Well-known system files: no setting may name one, or a path below one.
const SYSTEM_FILES: &[&str] = &[
    "/etc/bash.bashrc",
    "/etc/crontab",
    "/etc/environment",
    "/etc/fstab",
    "/etc/group",
    "/etc/gshadow",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/ld.so.conf",
    "/etc/ld.so.preload",
    "/etc/login.defs",
    "/etc/machine-id",
    "/etc/nftables.conf",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/profile",
    "/etc/resolv.conf",
    "/etc/shadow",
    "/etc/ssh/sshd_config",
    "/etc/sudoers",
];

/// Binary directories of the system's packages: install.sh would replace
/// a packaged program there.
const PACKAGE_BIN_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin"];

fn within(path: &str, dir: &str) -> bool {
    path == dir
        || dir == "/"
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// True when `dir` is a system directory (see [`SYSTEM_DIRS`]).
pub fn is_system_dir(dir: &str) -> bool {
    SYSTEM_DIRS.contains(&dir)
}

/// Records a problem when `path` (already absolute and normalised) is a
/// system directory or file, or lies in a system tree.
pub fn not_system(p: &mut Problems, setting: &str, path: &str) {
    if path.is_empty() {
        return; // already refused by its own check
    }
    if let Some(tree) = SYSTEM_TREES.iter().find(|t| within(path, t)) {
        p.add(
            setting,
            path,
            format!("is in `{tree}`, which belongs to the system; use a path of the app's own, like `/opt/NAME/...`"),
        );
    } else if is_system_dir(path) {
        p.add(
            setting,
            path,
            "is a system directory; use a directory of the app's own, like `/opt/NAME/...`",
        );
    } else if let Some(file) = SYSTEM_FILES.iter().find(|f| within(path, f)) {
        p.add(
            setting,
            path,
            format!("`{file}` is a system file; use a path of the app's own"),
        );
    }
}

/// [`abs_path`](super::super::checks::abs_path), then [`not_system`].
pub fn app_path(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    let path = super::super::checks::abs_path(p, setting, value)?;
    let before = p.0.len();
    not_system(p, setting, &path);
    (p.0.len() == before).then_some(path)
}

/// The binary may not replace a program of the system's packages.
pub fn not_packaged_binary(p: &mut Problems, binary: &str) {
    let dir = binary.rsplit_once('/').map_or("", |(d, _)| d);
    if PACKAGE_BIN_DIRS.contains(&dir) {
        p.add(
            "binary",
            binary,
            format!("`{dir}` holds the system's packaged programs and install.sh would replace one; use the prefix or `/usr/local/bin`"),
        );
    }
}

/// No path setting may lie in (or be) a directory nginx serves to anyone:
/// secrets, keys, logs, configuration or the binary would be downloadable.
/// `served` and `others` are (setting, path) pairs; empty paths are skipped.
pub fn not_served(p: &mut Problems, served: &[(&str, &str)], others: &[(&str, &str)]) {
    for &(served_key, dir) in served.iter().filter(|(_, d)| !d.is_empty()) {
        for &(key, path) in others.iter().filter(|(_, v)| !v.is_empty()) {
            if within(path, dir) {
                p.add(
                    key,
                    path,
                    format!("is inside `{served_key}` (`{dir}`), which nginx serves to anyone"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(f: impl FnOnce(&mut Problems)) -> Vec<String> {
        let mut p = Problems::default();
        f(&mut p);
        p.0
    }

    #[test]
    fn system_paths_are_refused_and_app_paths_pass() {
        for bad in [
            "/",
            "/etc",
            "/tmp",
            "/root",
            "/root/app",
            "/usr",
            "/var",
            "/home",
            "/proc/self/environ",
            "/dev/null",
            "/etc/passwd",
            "/etc/passwd/env",
            "/etc/shadow",
        ] {
            assert_eq!(problems(|p| not_system(p, "prefix", bad)).len(), 1, "{bad}");
        }
        for ok in [
            "/opt/site",
            "/etc/site/env",
            "/var/www/letsencrypt",
            "/etc/letsencrypt/live",
            "/etc/nginx",
            "/run/nginx.pid",
            "/var/log/nginx",
            "/tmp/scratch/static",
            "/etc/passwd-site/env",
        ] {
            assert!(problems(|p| not_system(p, "prefix", ok)).is_empty(), "{ok}");
        }
    }

    #[test]
    fn packaged_binaries_and_served_nesting_are_refused() {
        assert_eq!(
            problems(|p| not_packaged_binary(p, "/usr/bin/site")).len(),
            1
        );
        assert!(problems(|p| not_packaged_binary(p, "/usr/local/bin/site")).is_empty());
        assert!(problems(|p| not_packaged_binary(p, "/opt/site/bin/site")).is_empty());
        let served = [("static-root", "/opt/site")];
        let all = problems(|p| {
            not_served(
                p,
                &served,
                &[
                    ("prefix", "/opt/site"),
                    ("env-file", "/opt/site/env"),
                    ("nginx-log-dir", "/var/log/nginx"),
                    ("binary", "/opt/site-other/bin/x"),
                ],
            )
        });
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(all[1].starts_with("`env-file` = `/opt/site/env`: is inside `static-root`"));
    }
}
