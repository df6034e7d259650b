//! Watching: notify (inotify on Linux) -> debounced batches of real changes.
//!
//! Directories are watched one by one (never recursively) so that the
//! target directory, `.git` and everything `.gitignore`/`.ignore` exclude
//! are never watched at all: a build writing thousands of files into
//! `target/` costs nothing here. New directories are picked up as they
//! appear. A change only counts when a file's content hash changed, so a
//! `touch`, a checkout-and-back or an editor's double write does not
//! rebuild. A single file changed after a quiet spell is sent at once, so
//! the build starts without waiting; several files at once, and changes
//! that follow within the debounce, are coalesced with a
//! trailing debounce bounded by a maximum wait, so an endless stream of
//! events cannot starve the build. The coordinator cancels a build that a
//! newer change overtakes, so a burst costs at most one aborted start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::classify::{classify, Kind};
use self::names::{absolute_forms, is_editor_junk};
use super::fingerprint::{self, Fingerprint};

mod classify;
mod names;

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchSet {
    /// Directories of workspace members and local path dependencies.
    pub roots: Vec<PathBuf>,
    pub target_dir: PathBuf,
    /// Changes here do not rebuild (unless a build read the file).
    pub static_dir: Option<PathBuf>,
}

/// A batch of changes after the debounce.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// Changed sources: a rebuild is needed.
    pub code: Vec<PathBuf>,
    /// Changed files under the static directory.
    pub statics: Vec<PathBuf>,
    /// Changed files no build reads (see [`classify`]): the app reads
    /// them as it runs, so open tabs reload, with no cargo run.
    pub runtime: Vec<PathBuf>,
    /// A Cargo.toml or Cargo.lock changed: read the project again.
    pub manifest: bool,
}

/// Messages to the watcher task.
#[derive(Debug)]
pub enum Command {
    /// The project changed shape (manifest edited): watch these instead,
    /// with this debounce.
    Reset(WatchSet, Duration),
    /// Files a build read (dep-info); those outside the roots are watched
    /// too. None or an empty list: not known (no good build, or the last
    /// one failed), so every change builds.
    BuildInputs(Vec<PathBuf>),
}

/// Upper bound on how long a burst may delay a build.
pub fn max_wait(debounce: Duration) -> Duration {
    (debounce * 20).clamp(Duration::from_millis(500), Duration::from_secs(2))
}

/// Starts the watcher task. Changes arrive on the returned receiver.
/// `skip` is a file manage writes itself (`--events`): never a change.
pub fn spawn(
    set: WatchSet,
    debounce: Duration,
    commands: mpsc::UnboundedReceiver<Command>,
    skip: Option<&Path>,
) -> Result<mpsc::UnboundedReceiver<Change>> {
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event| {
        let _ = raw_tx.send(event);
    })
    .context("cannot start the file watcher")?;
    let mut state = State {
        watcher,
        set,
        ignores: HashMap::new(),
        global: Gitignore::global().0,
        hashes: HashMap::new(),
        watched: HashSet::new(),
        outside: HashSet::new(),
        build_inputs: None,
        skip: skip.into_iter().flat_map(absolute_forms).collect(),
    };
    for root in state.set.roots.clone() {
        state.scan(&root, false)?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    // Its own thread and runtime: reading files (however bounded) never
    // holds up the proxy or the signal handling on the main runtime.
    std::thread::Builder::new()
        .name("manage-watch".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(run(state, debounce, raw_rx, commands, tx));
            }
        })
        .context("cannot start the file watcher")?;
    Ok(rx)
}

struct State {
    watcher: RecommendedWatcher,
    set: WatchSet,
    /// `.gitignore`/`.ignore` matchers by the directory they live in.
    ignores: HashMap<PathBuf, Vec<Gitignore>>,
    global: Gitignore,
    /// What every watched file holds.
    hashes: HashMap<PathBuf, Fingerprint>,
    watched: HashSet<PathBuf>,
    /// Files outside the roots that a build read.
    outside: HashSet<PathBuf>,
    /// Every file the last good build read, by dep-info; None: not known.
    build_inputs: Option<HashSet<PathBuf>>,
    skip: Vec<PathBuf>,
}

async fn run(
    mut state: State,
    mut debounce: Duration,
    mut raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    tx: mpsc::UnboundedSender<Change>,
) {
    let mut limit = max_wait(debounce);
    let mut pending: HashSet<PathBuf> = HashSet::new();
    let mut first: Option<Instant> = None;
    let mut deadline = Instant::now();
    // When the last batch was sent: a change after a quiet spell is sent
    // at once (the leading edge), one within the debounce waits for more.
    let mut last_sent: Option<Instant> = None;
    loop {
        tokio::select! {
            event = raw.recv() => {
                let Some(event) = event else { return };
                let Ok(event) = event else { continue };
                if state.note_event(&event, &mut pending) {
                    let now = Instant::now();
                    let quiet = last_sent.is_none_or(|t| now.duration_since(t) >= debounce);
                    if first.is_none() && quiet {
                        // Whatever is already queued belongs to this batch.
                        while let Ok(event) = raw.try_recv() {
                            if let Ok(event) = event {
                                state.note_event(&event, &mut pending);
                            }
                        }
                        first = Some(now);
                        // One file saved: build at once. More (a checkout,
                        // a new directory, a generator): wait for the
                        // burst to settle, so it is one build.
                        deadline = if pending.len() == 1 {
                            now
                        } else {
                            now + debounce.min(limit)
                        };
                    } else {
                        let started = *first.get_or_insert(now);
                        deadline = (now + debounce).min(started + limit);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline), if first.is_some() => {
                first = None;
                let change = state.flush(std::mem::take(&mut pending));
                if change.code.is_empty() && change.statics.is_empty() && change.runtime.is_empty() {
                    continue;
                }
                last_sent = Some(Instant::now());
                if tx.send(change).is_err() {
                    return;
                }
            }
            command = commands.recv() => match command {
                Some(Command::Reset(set, new)) => {
                    state.reset(set);
                    debounce = new;
                    limit = max_wait(debounce);
                }
                Some(Command::BuildInputs(files)) => state.add_build_inputs(files),
                None => return,
            },
        }
    }
}

impl State {
    /// Watches `dir` and everything below it that is not ignored, hashing
    /// files. With `report`, returns the files found (a directory that
    /// appeared after its contents were written).
    fn scan(&mut self, dir: &Path, report: bool) -> Result<Vec<PathBuf>> {
        let target = self.set.target_dir.clone();
        let walker = ignore::WalkBuilder::new(dir)
            .hidden(false)
            .parents(true)
            .require_git(false)
            .filter_entry(move |e| e.file_name() != ".git" && !e.path().starts_with(&target))
            .build();
        let mut found = Vec::new();
        for entry in walker.flatten() {
            let path = entry.path().to_path_buf();
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                self.load_ignores(&path);
                if self.watched.insert(path.clone()) {
                    if let Err(err) = self.watcher.watch(&path, RecursiveMode::NonRecursive) {
                        self.watched.remove(&path);
                        if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) {
                            return Err(anyhow::anyhow!(
                                "the system's inotify watch limit is reached; raise it with \
                                 `sysctl fs.inotify.max_user_watches=524288`"
                            ));
                        }
                    }
                }
            } else if let Some(fp) = fingerprint::of(&path, self.hashes.get(&path)) {
                self.hashes.insert(path.clone(), fp);
                if report {
                    found.push(path);
                }
            }
        }
        Ok(found)
    }

    fn load_ignores(&mut self, dir: &Path) {
        let mut matchers = Vec::new();
        for name in [".gitignore", ".ignore"] {
            let file = dir.join(name);
            if file.is_file() {
                let mut builder = GitignoreBuilder::new(dir);
                builder.add(&file);
                if let Ok(m) = builder.build() {
                    matchers.push(m);
                }
            }
        }
        if matchers.is_empty() {
            self.ignores.remove(dir);
        } else {
            self.ignores.insert(dir.to_path_buf(), matchers);
        }
    }

    fn root_of(&self, path: &Path) -> Option<&Path> {
        self.set
            .roots
            .iter()
            .filter(|r| path.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
            .map(PathBuf::as_path)
    }

    /// Whether a path under a root is excluded from watching.
    fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if path.starts_with(&self.set.target_dir)
            || path.components().any(|c| c.as_os_str() == ".git")
            || self.skip.iter().any(|s| s == path)
        {
            return true;
        }
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_editor_junk)
        {
            return true;
        }
        if self.outside.contains(path) {
            return false;
        }
        let Some(root) = self.root_of(path) else {
            return true;
        };
        // The deepest ignore file that has an opinion decides.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if let Some(matchers) = self.ignores.get(d) {
                for m in matchers.iter().rev() {
                    match m.matched_path_or_any_parents(path, is_dir) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
            }
            if d == root {
                break;
            }
            dir = d.parent();
        }
        matches!(self.global.matched(path, is_dir), Match::Ignore(_))
    }

    /// Records an event's paths; true when something relevant happened.
    fn note_event(&mut self, event: &notify::Event, pending: &mut HashSet<PathBuf>) -> bool {
        if matches!(event.kind, EventKind::Access(_)) {
            // Reads never change content (close-after-write is also
            // reported as a modify).
            return false;
        }
        let mut relevant = false;
        for path in &event.paths {
            let is_dir = path.is_dir();
            if self.is_ignored(path, is_dir) {
                continue;
            }
            if is_dir && self.watched.contains(path) {
                // Attributes of a directory we already watch.
                continue;
            }
            if is_dir {
                // A new or renamed directory: watch it, and treat what is
                // already inside as changed.
                if let Ok(found) = self.scan(path, true) {
                    for f in found {
                        self.hashes.remove(&f);
                        pending.insert(f);
                    }
                }
                relevant = true;
                continue;
            }
            if matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some(".gitignore" | ".ignore")
            ) {
                if let Some(dir) = path.parent() {
                    self.load_ignores(dir);
                }
            }
            pending.insert(path.clone());
            relevant = true;
        }
        relevant
    }

    /// Hashes the pending paths and classifies what really changed.
    fn flush(&mut self, pending: HashSet<PathBuf>) -> Change {
        let mut change = Change::default();
        let mut paths: Vec<PathBuf> = pending.into_iter().collect();
        paths.sort();
        for path in paths {
            let changed = match fingerprint::of(&path, self.hashes.get(&path)) {
                Some(fp) => self
                    .hashes
                    .insert(path.clone(), fp)
                    .is_none_or(|old| fp.differs_from(&old)),
                // Gone (or unreadable): a change only if we knew it.
                None => !path.is_dir() && self.hashes.remove(&path).is_some(),
            };
            if !changed {
                continue;
            }
            match classify(
                &path,
                self.set.static_dir.as_deref(),
                self.build_inputs.as_ref(),
            ) {
                Kind::Static => change.statics.push(path),
                Kind::Runtime => change.runtime.push(path),
                Kind::Code => change.code.push(path),
                Kind::Manifest => {
                    change.manifest = true;
                    change.code.push(path);
                }
            }
        }
        change
    }

    fn reset(&mut self, set: WatchSet) {
        for dir in self.watched.drain() {
            let _ = self.watcher.unwatch(&dir);
        }
        self.ignores.clear();
        self.hashes.clear();
        self.outside.clear();
        self.set = set;
        for root in self.set.roots.clone() {
            let _ = self.scan(&root, false);
        }
    }

    fn add_build_inputs(&mut self, files: Vec<PathBuf>) {
        self.build_inputs = (!files.is_empty()).then(|| files.iter().cloned().collect());
        for file in files {
            if file.starts_with(&self.set.target_dir)
                || self.root_of(&file).is_some()
                || self.outside.contains(&file)
            {
                continue;
            }
            let Some(dir) = file.parent() else { continue };
            if self.watched.insert(dir.to_path_buf())
                && self
                    .watcher
                    .watch(dir, RecursiveMode::NonRecursive)
                    .is_err()
            {
                self.watched.remove(dir);
                continue;
            }
            if let Some(fp) = fingerprint::of(&file, self.hashes.get(&file)) {
                self.hashes.insert(file.clone(), fp);
            }
            self.outside.insert(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_wait_is_bounded() {
        assert_eq!(max_wait(Duration::from_millis(50)), Duration::from_secs(1));
        assert_eq!(
            max_wait(Duration::from_millis(1)),
            Duration::from_millis(500)
        );
        assert_eq!(max_wait(Duration::from_secs(5)), Duration::from_secs(2));
    }
}
