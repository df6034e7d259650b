//! `--events PATH`: what runserver does, one JSON object per line, for
//! editors, scripts and tests (which then wait on facts, not on the
//! terminal's wording).
//!
//! Every line has `event` (its name) and `ms` (milliseconds since manage
//! started), then the event's own fields; the names are listed in the
//! README. Lines are written by a thread of their own, so a slow reader
//! (a FIFO nobody drains) never holds up the server: it only delays the
//! events. A reader that goes away costs one warning and the rest of the
//! events, nothing else.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::error::hinted;
use crate::ui::Ui;

/// Where events go; cheap to clone. [`Events::none`] drops them.
#[derive(Clone)]
pub struct Events {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Events").field(&self.path()).finish()
    }
}

struct Inner {
    started: Instant,
    tx: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl Events {
    pub fn none() -> Events {
        Events { inner: None }
    }

    /// Opens (creates or truncates) `path`, `-` for stdout. A FIFO must
    /// have its reader already: manage does not wait for one.
    pub fn open(path: &Path, ui: &Ui) -> Result<Events> {
        let file = if path == Path::new("-") {
            // A duplicate, so that closing it leaves stdout alone.
            let fd = unsafe { libc::dup(libc::STDOUT_FILENO) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error())
                    .context("cannot write events to stdout");
            }
            // SAFETY: a fresh descriptor this function owns.
            unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        } else {
            open_path(path)?
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let shown = path.display().to_string();
        let ui = ui.clone();
        let writer = std::thread::Builder::new()
            .name("events".to_owned())
            .spawn(move || write_lines(file, rx, &shown, &ui))
            .context("cannot start the events writer")?;
        Ok(Events {
            inner: Some(Arc::new(Inner {
                started: Instant::now(),
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                path: path.to_path_buf(),
            })),
        })
    }

    /// The file events go to (for the watcher to leave alone).
    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.path.as_path())
    }

    /// Writes `{"event": name, "ms": ..., <fields>}`. `fields` is a JSON
    /// object (`serde_json::json!({...})`) or `null`.
    pub fn emit(&self, name: &str, fields: Value) {
        let Some(inner) = &self.inner else { return };
        let line = render(name, inner.started.elapsed().as_millis(), &fields);
        if let Some(tx) = inner.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(line);
        }
    }

    /// Writes what is queued and closes the file; later events are dropped.
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        drop(inner.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let writer = inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

fn open_path(path: &Path) -> Result<File> {
    let refuse = |what: String| {
        hinted(
            format!("cannot write events to {}: {what}", path.display()),
            "give --events a file path (it is created or truncated), a FIFO with its reader running, or `-` for stdout",
        )
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".to_owned()));
    }
    // Non-blocking, so that opening a FIFO nobody reads fails at once
    // (ENXIO) instead of hanging the start.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ENXIO) => refuse("it is a FIFO that nothing reads yet".to_owned()),
            _ => refuse(err.to_string()),
        })?;
    // Back to blocking writes: the writer thread may wait on a slow reader.
    use std::os::fd::AsRawFd as _;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

fn write_lines(mut file: File, rx: mpsc::Receiver<Vec<u8>>, shown: &str, ui: &Ui) {
    while let Ok(line) = rx.recv() {
        if let Err(err) = file.write_all(&line) {
            ui.warn(format!(
                "cannot write events to {shown} ({err}); no more events this run"
            ));
            // Drain and drop the rest, so senders never block or grow.
            for _ in rx.iter() {}
            return;
        }
    }
}

/// One line: `event` and `ms` first, then `fields`' members.
fn render(name: &str, ms: u128, fields: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({ "event": name })).unwrap_or_default();
    line.pop(); // the closing brace
    line.extend_from_slice(format!(",\"ms\":{ms}").as_bytes());
    if let Value::Object(map) = fields {
        for (key, value) in map {
            line.push(b',');
            line.extend(serde_json::to_vec(key).unwrap_or_default());
            line.push(b':');
            line.extend(serde_json::to_vec(value).unwrap_or_default());
        }
    }
    line.extend_from_slice(b"}\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::{ColorChoice, Verbosity};
    use serde_json::json;

    #[test]
    fn a_line_is_one_object_with_the_name_and_time_first() {
        let line = render("build-failed", 12, &json!({"errors": 2, "why": "a\nb\""}));
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with("{\"event\":\"build-failed\",\"ms\":12,"),
            "{text}"
        );
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["errors"], 2);
        assert_eq!(value["why"], "a\nb\"");
    }

    #[test]
    fn null_fields_give_the_name_and_time_only() {
        let text = String::from_utf8(render("stopped", 0, &Value::Null)).unwrap();
        assert_eq!(text, "{\"event\":\"stopped\",\"ms\":0}\n");
    }

    #[test]
    fn events_reach_the_file_in_order_and_close_flushes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let events = Events::open(&path, &Ui::new(ColorChoice::Never, Verbosity::Quiet)).unwrap();
        for n in 0..100 {
            events.emit("n", json!({ "n": n }));
        }
        events.close();
        events.emit("late", Value::Null);
        let text = std::fs::read_to_string(&path).unwrap();
        let ns: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ns, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_fifo_without_a_reader_and_a_directory_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let ui = Ui::new(ColorChoice::Never, Verbosity::Quiet);
        let err = format!("{:#}", Events::open(&fifo, &ui).err().unwrap());
        assert!(err.contains("FIFO that nothing reads"), "{err}");
        let err = format!("{:#}", Events::open(dir.path(), &ui).err().unwrap());
        assert!(err.contains("is a directory"), "{err}");
    }
}
