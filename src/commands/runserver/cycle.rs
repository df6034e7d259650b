//! One build-and-start cycle: `cargo build`, then, when the executable
//! changed (or nothing runs yet), a new child next to the old one, until
//! it is ready. A cycle runs as its own task and can be cancelled at any
//! point; its end is reported to the coordinator as a [`CycleEnd`].
//!
//! An app whose address is fixed cannot start next to its old self. For
//! it the coordinator runs two phases: a build that ends in
//! [`CycleEnd::Built`] while the old app still serves, then a cycle that
//! stops the old app (requests wait in the proxy meanwhile) and starts
//! the new one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::addr::AppAddr;
use super::build::{self, BuildSpec, Failure, Outcome};
use super::child::Child;
use super::events::Events;
use super::migrations::MigrationCheck;
use super::ready::{self, NotReady, Ready, Wait};
use super::reaper::Reaper;
use super::state::Backend;
use crate::ui::Ui;

/// A build-and-start in progress.
pub struct Cycle {
    pub cancel: oneshot::Sender<()>,
    pub handle: JoinHandle<CycleEnd>,
}

/// How a cycle ended.
pub enum CycleEnd {
    Cancelled,
    Error(anyhow::Error),
    Failed(Failure),
    /// Built; the old app must stop before the new one can start.
    Built {
        exe: PathBuf,
        elapsed: Duration,
    },
    /// Built, but the executable did not change.
    Unchanged {
        exe: PathBuf,
        elapsed: Duration,
    },
    NotReady {
        exe: PathBuf,
        elapsed: Duration,
        why: NotReady,
    },
    Started {
        exe: PathBuf,
        child: Child,
        elapsed: Duration,
        /// From the start (or the old app's stop) until it answered.
        ready_in: Duration,
        ready: Ready,
    },
    /// Phase two: the new app never became ready, so the saved copy of the
    /// old one was started again.
    RolledBack {
        exe: PathBuf,
        elapsed: Duration,
        why: NotReady,
        child: Child,
        ready: Ready,
    },
}

/// An app to stop before its successor starts.
pub struct Retiree {
    pub child: Child,
    pub backend: Arc<Backend>,
    pub grace: Duration,
    /// Where to keep a copy of its executable, to start it again should
    /// its successor not start (cargo has replaced the file by then).
    pub keep_at: PathBuf,
}

impl Retiree {
    /// Keeps a copy of its executable (from `/proc`, which still has the
    /// file the process runs), lets its requests finish, then stops it.
    /// Returns the copy, if one could be made.
    pub async fn retire(self) -> Option<PathBuf> {
        let exe = PathBuf::from(format!("/proc/{}/exe", self.child.pid()));
        let keep_at = self.keep_at.clone();
        let kept = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(keep_at.parent()?).ok()?;
            let _ = std::fs::remove_file(&keep_at);
            std::fs::copy(&exe, &keep_at).ok()?;
            Some(keep_at)
        });
        self.backend.drained(self.grace).await;
        self.backend.close();
        let kept = kept.await.ok().flatten();
        let _ = self.child.stop(self.grace).await;
        // An app that does not unlink its socket before binding it again
        // would find its own leftover in the way.
        let _ = tokio::task::spawn_blocking(self.backend.addr.sweep()).await;
        kept
    }
}

/// What a cycle needs to know.
pub struct Job {
    pub spec: BuildSpec,
    /// What the app is started with after its name.
    pub app_args: Vec<String>,
    pub ui: Ui,
    pub cwd: PathBuf,
    pub health: Option<String>,
    pub app_addr: Option<AppAddr>,
    pub ready_timeout: Duration,
    /// Start a child even when the executable did not change.
    pub force_start: bool,
    /// End after the build with [`CycleEnd::Built`] (phase one).
    pub build_only: bool,
    /// Skip the build: phase one built this (with its build time).
    pub prebuilt: Option<(PathBuf, Duration)>,
    /// Stop this app before starting the new one (phase two).
    pub replace: Option<Retiree>,
    pub reaper: Reaper,
    /// Checked (or applied, with `--migrate`) before the app starts.
    pub migrations: Option<Arc<MigrationCheck>>,
    pub events: Events,
}

impl Cycle {
    pub fn spawn(job: Job) -> Cycle {
        let (cancel, cancel_rx) = oneshot::channel();
        Cycle {
            cancel,
            handle: tokio::spawn(run(job, cancel_rx)),
        }
    }
}

/// Resolves when the cycle (if any) ends; never while there is none.
pub async fn join(cycle: &mut Option<Cycle>) -> CycleEnd {
    match cycle {
        Some(c) => match (&mut c.handle).await {
            Ok(end) => end,
            Err(err) => CycleEnd::Error(anyhow::anyhow!("the build task failed: {err}")),
        },
        None => std::future::pending().await,
    }
}

async fn run(mut job: Job, mut cancel: oneshot::Receiver<()>) -> CycleEnd {
    let (exe, elapsed) = match job.prebuilt.take() {
        Some(built) => built,
        None => {
            let (exe, fresh, elapsed) = match build(&job, &mut cancel).await {
                Ok(built) => built,
                Err(end) => return end,
            };
            if fresh && !job.force_start {
                return CycleEnd::Unchanged { exe, elapsed };
            }
            if job.build_only {
                return CycleEnd::Built { exe, elapsed };
            }
            (exe, elapsed)
        }
    };
    if let Some(check) = &job.migrations {
        // Not cancellable: a migration is not stopped half-way (each runs
        // in a transaction anyway).
        check.run(&job.ui).await;
    }
    let started = Instant::now();
    let mut kept = None;
    if let Some(old) = job.replace.take() {
        tokio::select! {
            copy = old.retire() => kept = copy,
            // Dropping the old child kills its process group.
            _ = &mut cancel => return CycleEnd::Cancelled,
        }
    }
    let (child, ready) = match start(&job, &exe, &mut cancel).await {
        Ok(started) => started,
        Err(end) => return end,
    };
    match ready {
        Ok(ready) => CycleEnd::Started {
            exe,
            child,
            elapsed,
            ready_in: started.elapsed(),
            ready,
        },
        Err(why) => {
            child.stop(Duration::from_millis(500)).await;
            // The old app was stopped for this one: bring it back.
            if let Some(previous) = kept {
                if let Ok((child, Ok(ready))) = start(&job, &previous, &mut cancel).await {
                    return CycleEnd::RolledBack {
                        exe,
                        elapsed,
                        why,
                        child,
                        ready,
                    };
                }
            }
            CycleEnd::NotReady { exe, elapsed, why }
        }
    }
}

/// Starts `exe` and waits until it is ready (or not).
async fn start(
    job: &Job,
    exe: &std::path::Path,
    cancel: &mut oneshot::Receiver<()>,
) -> Result<(Child, Result<Ready, NotReady>), CycleEnd> {
    let child = Child::spawn(exe, &job.app_args, &job.cwd, &job.ui, &job.reaper)
        .map_err(CycleEnd::Error)?;
    job.events.emit(
        "app-started",
        json!({ "pid": child.pid(), "port": child.port.port() }),
    );
    let wait = Wait {
        health: job.health.as_deref(),
        app_addr: job.app_addr.clone(),
        timeout: job.ready_timeout,
        name: &job.spec.bin,
    };
    tokio::select! {
        ready = ready::wait(&child, &wait, &job.ui) => {
            if let Ok(ready) = &ready {
                job.events.emit("app-ready", json!({
                    "pid": child.pid(),
                    "addr": ready.addr.to_string(),
                    "via": ready.via.name(),
                }));
            }
            Ok((child, ready))
        }
        // Dropping the child kills its process group.
        _ = cancel => Err(CycleEnd::Cancelled),
    }
}

/// `cargo build`, cancellable: the executable, whether cargo left it as it
/// was, and the build time.
async fn build(
    job: &Job,
    cancel: &mut oneshot::Receiver<()>,
) -> Result<(PathBuf, bool, Duration), CycleEnd> {
    let (build_cancel_tx, build_cancel_rx) = oneshot::channel();
    job.events.emit("build-started", json!(null));
    let build = build::build(&job.spec, &job.ui, build_cancel_rx, &job.reaper);
    tokio::pin!(build);
    let outcome = tokio::select! {
        outcome = &mut build => outcome,
        _ = cancel => {
            let _ = build_cancel_tx.send(());
            let _ = build.await;
            return Err(CycleEnd::Cancelled);
        }
    };
    match outcome {
        Err(err) => Err(CycleEnd::Error(err)),
        Ok(Outcome::Cancelled) => Err(CycleEnd::Cancelled),
        Ok(Outcome::Failed(failure)) => Err(CycleEnd::Failed(failure)),
        Ok(Outcome::Built {
            exe,
            fresh,
            elapsed,
        }) => {
            job.events.emit(
                "build-finished",
                json!({ "elapsed_ms": elapsed.as_millis(), "fresh": fresh }),
            );
            Ok((exe, fresh, elapsed))
        }
    }
}
