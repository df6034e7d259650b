//! Process groups: every process runserver starts (cargo, the app) leads a
//! group of its own, so one signal reaches everything it started, and dies
//! with manage through `PR_SET_PDEATHSIG`.

/// Makes a command start its own process group and die with its parent.
pub fn isolate(cmd: &mut tokio::process::Command) {
    cmd.process_group(0).kill_on_drop(true);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: only async-signal-safe calls between fork and exec.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// Sends `sig` to a whole process group.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) on a process group this module created.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}
