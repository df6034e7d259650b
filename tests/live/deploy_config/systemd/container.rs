//! A Debian 12 booted with systemd, in a container on this machine, for
//! installing deploy-config's output as an operator would (#10).
//!
//! The recipe (see the research notes on booting Debian 12 here): a
//! `debootstrap --variant=minbase` tree, cached per package list in the
//! target directory; a copy of it per container, booted with
//! `systemd-nspawn -b --private-network` and driven with `nsenter`, since
//! this machine has no systemd of its own to register the container with.
//!
//! Everything a container creates is removed by id when it drops, also
//! after a failed assertion: the nspawn process and the container's
//! processes, the cgroups nspawn makes (inside one of our own, so that
//! containers of parallel tests never share them), and the tree's copy.
//! The container has its own network namespace with only loopback, so its
//! firewall and traffic never reach this machine's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::debian::debootstrap_tree;
use crate::support::deploy::{run, tool};
use crate::support::descendants;

/// Packages in the tree itself: a booting systemd, and the test's tools
/// (pebble: Let's Encrypt's test ACME server).
const INCLUDE: &str = "systemd,systemd-sysv,dbus,curl,wrk,iproute2,ca-certificates,pebble";
/// Packages install.sh installs, downloaded into the tree's apt cache so
/// that it can install them without a network.
const PREFETCH: &[&str] = &[
    "nginx",
    "libnginx-mod-http-brotli-filter",
    "libnginx-mod-http-brotli-static",
    "nftables",
    "logrotate",
    "postgresql",
    "unattended-upgrades",
    "certbot",
];

/// The cached Debian 12 tree (built once: about 45 s).
pub fn debian_tree() -> PathBuf {
    debootstrap_tree("debian12", INCLUDE, PREFETCH)
}

/// The cgroup hierarchies nspawn uses: the unified one and, on a hybrid
/// (cgroup v1) machine, systemd's named one.
fn cgroup_roots() -> Vec<PathBuf> {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").is_file() {
        vec![unified.to_path_buf(), "/sys/fs/cgroup/systemd".into()]
    } else {
        vec!["/sys/fs/cgroup".into()]
    }
}

/// A booted Debian 12 with systemd.
pub struct Container {
    pub name: String,
    nspawn: Child,
    /// The container's PID 1 (systemd), as this machine sees it.
    pub leader: i32,
    cgroups: Vec<PathBuf>,
    root: tempfile::TempDir,
}

impl Container {
    /// Boots a copy of `tree` with a network of its own holding only
    /// loopback; `name` is short and unique in this run.
    pub fn boot(tree: &Path, name: &str) -> Container {
        Container::boot_in(tree, name, None)
    }

    /// Boots a copy of `tree` in the network namespace `netns` (made with
    /// `ip netns add`), or in one of its own with only loopback.
    pub fn boot_in(tree: &Path, name: &str, netns: Option<&str>) -> Container {
        let name = format!("mg{}{name}", std::process::id());
        let root = tempfile::Builder::new()
            .prefix("container-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let rootfs = root.path().join("rootfs");
        let copy = run(Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(tree)
            .arg(&rootfs));
        assert!(copy.status.success(), "copying the tree failed: {copy:?}");
        // debootstrap writes no /etc/hosts; every installed Debian has one.
        let hosts = rootfs.join("etc/hosts");
        if !hosts.exists() {
            fs::write(&hosts, format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{name}\n")).unwrap();
        }
        let cgroups: Vec<PathBuf> = cgroup_roots().iter().map(|r| r.join(&name)).collect();
        for cgroup in &cgroups {
            fs::create_dir(cgroup)
                .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", cgroup.display()));
        }
        // Moves itself into our cgroups first, so nspawn's own (`payload`,
        // `supervisor`) are made inside them.
        let mut join = String::new();
        for cgroup in &cgroups {
            join.push_str(&format!("echo $$ > '{}/cgroup.procs'; ", cgroup.display()));
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{join}exec \"$@\""))
            .arg("sh")
            .arg(tool("systemd-nspawn", "systemd-container"))
            .arg("-D")
            .arg(&rootfs)
            .arg(match netns {
                Some(ns) => format!("--network-namespace-path=/run/netns/{ns}"),
                None => "--private-network".to_owned(),
            })
            .args([
                "--boot",
                // Without these, IPAddressDeny= in the units cannot work.
                "--system-call-filter=bpf",
                "--console=passive",
                // No systemd on this machine to register with.
                "--register=no",
                "--keep-unit",
                "--machine",
                &name,
            ])
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(root.path().join("nspawn.log")).unwrap());
        let nspawn = cmd.spawn().expect("start systemd-nspawn");
        let mut container = Container {
            name,
            leader: 0,
            nspawn,
            cgroups,
            root,
        };
        let pid = container.nspawn.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(30);
        while container.leader == 0 {
            if let Ok(Some(status)) = container.nspawn.try_wait() {
                panic!(
                    "systemd-nspawn exited ({status}):\n{}",
                    fs::read_to_string(container.root.path().join("nspawn.log"))
                        .unwrap_or_default()
                );
            }
            container.leader = descendants(pid)
                .into_iter()
                .find(|p| {
                    fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "systemd")
                })
                .unwrap_or(0);
            assert!(
                Instant::now() < deadline,
                "no systemd in the container after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Until its bus is up, systemctl in the container fails at once.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut state = String::new();
        while Instant::now() < deadline {
            let out = container.sh("systemctl is-system-running");
            state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return container;
            }
            state.push_str(&String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the container did not finish booting within 60 s: {state}\n{}",
            String::from_utf8_lossy(&container.sh("systemctl --failed --no-pager").stdout)
        );
    }

    /// The container's file system, as this machine sees it.
    pub fn rootfs(&self) -> PathBuf {
        self.root.path().join("rootfs")
    }

    /// A command run inside the container (all its namespaces).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(tool("nsenter", "util-linux"));
        cmd.arg("-t")
            .arg(self.leader.to_string())
            .arg("-a")
            .arg(program)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8");
        cmd
    }

    /// Runs a bash script inside the container.
    pub fn sh(&self, script: &str) -> Output {
        run(self.command("bash").args(["-c", script]))
    }

    /// Runs a bash script inside the container; its stdout, or a failed
    /// test showing everything it printed.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the container, `{script}` failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let pid = self.nspawn.id() as i32;
        if self.leader != 0 {
            let _ = self
                .command("systemctl")
                .args(["poweroff", "--no-block"])
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.nspawn.try_wait() {
            // Did not shut down: killing PID 1 of its PID namespace kills
            // every process in the container.
            // SAFETY: kill(2) on processes this container started.
            unsafe {
                if self.leader != 0 {
                    libc::kill(self.leader, libc::SIGKILL);
                }
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = self.nspawn.wait();
        }
        // nspawn leaves its cgroups behind: remove them deepest first,
        // killing anything still in one.
        for cgroup in &self.cgroups {
            let mut dirs = Vec::new();
            collect_dirs(cgroup, &mut dirs);
            for dir in dirs.iter().rev() {
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        // SAFETY: processes left in the container's cgroup.
                        unsafe {
                            libc::kill(p, libc::SIGKILL);
                        }
                    }
                }
                for _ in 0..50 {
                    if fs::remove_dir(dir).is_ok() || !dir.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = fs::remove_dir_all(format!("/run/systemd/nspawn/propagate/{}", self.name));
    }
}

/// `dir` and every directory below it, parents before children.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}
