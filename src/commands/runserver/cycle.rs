//! One build-and-start cycle: `cargo build`, then, when the executable
//! changed (or nothing runs yet), a new child next to the old one, until
//! it is ready. A cycle runs as its own task and can be cancelled at any
//! point; its end is reported to the coordinator as a [`CycleEnd`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::build::{self, BuildSpec, Failure, Outcome};
use super::child::{Child, NotReady};
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
        ready_in: Duration,
    },
}

/// What a cycle needs to know.
pub struct Job {
    pub spec: BuildSpec,
    pub ui: Ui,
    pub cwd: PathBuf,
    pub health: Option<String>,
    pub ready_timeout: Duration,
    /// Start a child even when the executable did not change.
    pub force_start: bool,
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

async fn run(job: Job, mut cancel: oneshot::Receiver<()>) -> CycleEnd {
    let (build_cancel_tx, build_cancel_rx) = oneshot::channel();
    let build = build::build(&job.spec, &job.ui, build_cancel_rx);
    tokio::pin!(build);
    let outcome = tokio::select! {
        outcome = &mut build => outcome,
        _ = &mut cancel => {
            let _ = build_cancel_tx.send(());
            let _ = build.await;
            return CycleEnd::Cancelled;
        }
    };
    let (exe, fresh, elapsed) = match outcome {
        Err(err) => return CycleEnd::Error(err),
        Ok(Outcome::Cancelled) => return CycleEnd::Cancelled,
        Ok(Outcome::Failed(failure)) => return CycleEnd::Failed(failure),
        Ok(Outcome::Built {
            exe,
            fresh,
            elapsed,
        }) => (exe, fresh, elapsed),
    };
    if fresh && !job.force_start {
        return CycleEnd::Unchanged { exe, elapsed };
    }
    let started = Instant::now();
    let mut child = match Child::spawn(&exe, &job.cwd, &job.ui) {
        Ok(child) => child,
        Err(err) => return CycleEnd::Error(err),
    };
    let ready = tokio::select! {
        ready = child.wait_ready(job.health.as_deref(), job.ready_timeout) => ready,
        // Dropping the child kills its process group.
        _ = &mut cancel => return CycleEnd::Cancelled,
    };
    match ready {
        Ok(()) => CycleEnd::Started {
            exe,
            child,
            elapsed,
            ready_in: started.elapsed(),
        },
        Err(why) => {
            child.stop(Duration::from_millis(500)).await;
            CycleEnd::NotReady { exe, elapsed, why }
        }
    }
}
