//! The app's processes, wherever they were reparented: for tests that
//! prove nothing outlives manage.

use std::fs;

use super::Session;
use crate::support::{alive, descendants, listening_ports_of};

impl Session {
    /// The app's processes: below manage, or anywhere running one of its
    /// executables (an orphan has left manage's tree).
    pub fn app_processes(&self) -> Vec<i32> {
        let mut pids = descendants(self.proc.pid());
        pids.retain(|&p| !comm(p).starts_with("rustc"));
        pids.extend(processes_running(&self.exes, &self.target));
        pids.sort();
        pids.dedup();
        pids
    }

    /// Ports with a listening socket held by the app's processes.
    pub fn app_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .app_processes()
            .into_iter()
            .flat_map(listening_ports_of)
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default()
}

/// Live processes whose executable is one of `exes` in `target` (also
/// after a rebuild replaced the file: "... (deleted)").
pub fn processes_running(exes: &[String], target: &std::path::Path) -> Vec<i32> {
    if exes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(exe) = fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        let exe = exe.to_string_lossy();
        let exe = exe.trim_end_matches(" (deleted)");
        let path = std::path::Path::new(exe);
        let ours = path.starts_with(target)
            && path
                .file_name()
                .is_some_and(|f| exes.iter().any(|e| f.to_string_lossy() == *e));
        if ours && alive(pid) {
            out.push(pid);
        }
    }
    out
}
