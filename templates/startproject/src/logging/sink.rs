//! Where JSON lines go: stderr, a batch at a time.
//!
//! One `write(2)` per line costs more than formatting the line, so lines
//! are collected and written together by a `log-writer` thread at most
//! `MAX_DELAY` after the first line of a batch, or at once when the batch
//! reaches `MAX_BATCH`. A warning or an error is written at once with what
//! came before it, so the lines that explain a failure are out before
//! anything else happens. [`flush`] writes what is waiting; `main` calls it
//! before exiting and the panic hook before the panic message. A process
//! killed with SIGKILL loses at most the last `MAX_DELAY` of lines.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const MAX_DELAY: Duration = Duration::from_millis(50);
const MAX_BATCH: usize = 64 * 1024;

struct Sink {
    pending: Mutex<Vec<u8>>,
    started: Condvar,
    /// The batch being written (then, emptied, the next one's buffer).
    /// Taken while `pending` is still held, so batches reach stderr in the
    /// order they were taken.
    out: Mutex<Vec<u8>>,
    /// Whether the writer thread runs; without it every line is written
    /// at once.
    batching: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        let batching = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(writer)
            .is_ok();
        Sink {
            pending: Mutex::new(Vec::with_capacity(MAX_BATCH)),
            started: Condvar::new(),
            out: Mutex::new(Vec::with_capacity(MAX_BATCH)),
            batching,
        }
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Queues `line` (one whole line, newline included); `urgent` writes it,
/// and what waits before it, now.
pub fn write(line: &[u8], urgent: bool) {
    let sink = sink();
    let mut pending = lock(&sink.pending);
    let first = pending.is_empty();
    pending.extend_from_slice(line);
    if urgent || !sink.batching || pending.len() >= MAX_BATCH {
        write_out(sink, pending);
    } else if first {
        sink.started.notify_one();
    }
}

/// Writes every line still waiting.
pub fn flush() {
    if let Some(sink) = SINK.get() {
        write_out(sink, lock(&sink.pending));
    }
}

fn write_out(sink: &Sink, mut pending: MutexGuard<'_, Vec<u8>>) {
    if pending.is_empty() {
        return;
    }
    // Two buffers take turns: no allocation per batch.
    let mut batch = lock(&sink.out);
    std::mem::swap(&mut *pending, &mut *batch);
    drop(pending);
    // Nowhere to report a failed write to: stderr is where reports go.
    let _ = std::io::stderr().lock().write_all(&batch);
    batch.clear();
}

fn writer() {
    loop {
        let sink = sink();
        let pending = lock(&sink.pending);
        let pending = sink
            .started
            .wait_while(pending, |p| p.is_empty())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(pending);
        std::thread::sleep(MAX_DELAY);
        flush();
    }
}
