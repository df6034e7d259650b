//! From the source tree and the last run's state to what must be written.
//!
//! 1. Each source is *analysed* in parallel: a file whose stamp matches the
//!    state keeps its digest and references without being read; any other
//!    is read (text) or streamed (binary) and hashed, and CSS/JS scanned
//!    for references.
//! 2. Hashes are settled in dependency order. A file's hashed name comes
//!    from its content *after* its references were rewritten, so a CSS
//!    file that imports another changes name when the image that one
//!    references changes. Django reaches the same fixed point by repeating
//!    passes until nothing changes (at most 5); walking the references
//!    depth first gets there in one pass for any depth. A cycle (`a.css`
//!    imports `b.css` imports `a.css`) has no fixed point: the reference
//!    that closes it keeps its plain name, with a warning.
//! 3. A file whose hash is unchanged and whose outputs are still on disk as
//!    written is skipped; the others become jobs for `write`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rayon::prelude::*;

use super::hashing::{digest, hashed_name, Hasher, HASH_LEN};
use super::refs::{self, Kind, Ref};
use super::state::{Entry, Output, State};
use super::walk::Source;
use crate::files::{open_regular, read_regular};

/// Text larger than this is copied as it is: not scanned, not compressed.
pub const MAX_TEXT: u64 = 16 << 20;

/// Where a job's content comes from.
pub enum Body {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// One source whose outputs must be written.
pub struct Job {
    pub rel: String,
    pub hashed: String,
    pub body: Body,
    pub compress: bool,
    pub entry: Entry,
}

pub struct Plan {
    pub jobs: Vec<Job>,
    /// The new state for sources that need no writing (jobs add theirs).
    pub kept: BTreeMap<String, Entry>,
    /// plain name → hashed name, for every source.
    pub paths: BTreeMap<String, String>,
    /// Outputs of sources that are gone (plain names only: hashed names
    /// stay for pages that still reference them).
    pub stale: Vec<String>,
    pub warnings: Vec<String>,
}

struct Analysed {
    digest: String,
    /// Tree paths referenced, in order.
    targets: Vec<String>,
    /// The content and its reference spans, when it was read.
    read: Option<(Vec<u8>, Vec<Ref>)>,
    unchanged: bool,
}

pub fn plan(sources: &[Source], static_url: &str, old: &State, out_dir: &Path) -> Result<Plan> {
    let index: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.rel.as_str(), i))
        .collect();
    let exists = |rel: &str| index.contains_key(rel);
    let analysed: Vec<Analysed> = sources
        .par_iter()
        .map(|s| analyse(s, old.files.get(&s.rel), static_url, &exists))
        .collect::<Result<_>>()?;

    let mut settle = Settle {
        sources,
        analysed,
        index: &index,
        old,
        static_url,
        hash: vec![None; sources.len()],
        rewritten: vec![None; sources.len()],
        visiting: vec![false; sources.len()],
        warnings: Vec::new(),
    };
    for i in 0..sources.len() {
        settle.visit(i)?;
    }

    let mut plan = Plan {
        jobs: Vec::new(),
        kept: BTreeMap::new(),
        paths: BTreeMap::new(),
        stale: Vec::new(),
        warnings: std::mem::take(&mut settle.warnings),
    };
    for (i, source) in sources.iter().enumerate() {
        let (hash, refs) = settle.hash[i].clone().expect("every file was visited");
        let hashed = hashed_name(&source.rel, &hash);
        if exists(&hashed) {
            anyhow::bail!(
                "`{}` and the hashed name of `{}` are the same file; rename one of them",
                hashed,
                source.rel
            );
        }
        plan.paths.insert(source.rel.clone(), hashed.clone());
        let a = &mut settle.analysed[i];
        let compress = compressible(&source.rel)
            && source.stamp.size <= MAX_TEXT
            && !exists(&format!("{}.gz", source.rel))
            && !exists(&format!("{}.br", source.rel));
        let entry = Entry {
            stamp: source.stamp,
            digest: a.digest.clone(),
            refs,
            hash: hash.clone(),
            outputs: Vec::new(),
        };
        if let Some(prev) = old.files.get(&source.rel) {
            if a.unchanged && prev.hash == hash && outputs_intact(out_dir, &prev.outputs) {
                plan.kept.insert(source.rel.clone(), prev.clone());
                continue;
            }
        }
        let body = match (settle.rewritten[i].take(), a.read.take()) {
            (Some(bytes), _) | (None, Some((bytes, _))) => Body::Bytes(bytes),
            (None, None) if entry.refs.is_empty() => Body::File(source.path.clone()),
            // References settled from the state, outputs lost: rewrite again.
            (None, None) => Body::Bytes(settle.rewrite_fresh(i)?),
        };
        plan.jobs.push(Job {
            rel: source.rel.clone(),
            hashed,
            body,
            compress,
            entry,
        });
    }
    for (rel, entry) in &old.files {
        if !index.contains_key(rel.as_str()) {
            let hashed = hashed_name(rel, &entry.hash);
            plan.stale.extend(
                entry
                    .outputs
                    .iter()
                    .filter(|o| !o.name.starts_with(&hashed))
                    .map(|o| o.name.clone()),
            );
        }
    }
    Ok(plan)
}

/// Whether nginx gains from a precompressed copy (text, mostly).
pub fn compressible(rel: &str) -> bool {
    let ext = rel.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some(
            "css"
                | "js"
                | "mjs"
                | "map"
                | "json"
                | "svg"
                | "html"
                | "htm"
                | "txt"
                | "xml"
                | "csv"
                | "md"
                | "ico"
                | "wasm"
                | "ttf"
                | "otf"
                | "eot"
                | "webmanifest"
        )
    )
}

fn outputs_intact(out_dir: &Path, outputs: &[Output]) -> bool {
    !outputs.is_empty()
        && outputs.iter().all(|o| {
            std::fs::symlink_metadata(out_dir.join(&o.name)).is_ok_and(|m| {
                let stamp = super::walk::Stamp::of(&m);
                m.is_file() && stamp.size == o.size && stamp.mtime_ns == o.mtime_ns
            })
        })
}

fn analyse(
    source: &Source,
    prev: Option<&Entry>,
    static_url: &str,
    exists: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Analysed> {
    if let Some(prev) = prev.filter(|p| p.stamp == source.stamp) {
        return Ok(Analysed {
            digest: prev.digest.clone(),
            targets: prev.refs.iter().map(|(t, _)| t.clone()).collect(),
            read: None,
            unchanged: true,
        });
    }
    let kind = refs::kind(&source.rel);
    let text = (kind != Kind::Other || compressible(&source.rel)) && source.stamp.size <= MAX_TEXT;
    if !text {
        return Ok(Analysed {
            digest: stream_digest(&source.path)?,
            targets: Vec::new(),
            read: None,
            unchanged: false,
        });
    }
    let bytes = read_regular(&source.path, MAX_TEXT)
        .with_context(|| format!("cannot read `{}`", source.path.display()))?;
    let found = refs::find(kind, &bytes, &source.rel, static_url, exists);
    Ok(Analysed {
        digest: digest(&bytes),
        targets: found.iter().map(|r| r.target.clone()).collect(),
        read: Some((bytes, found)),
        unchanged: false,
    })
}

fn stream_digest(path: &Path) -> Result<String> {
    let context = || format!("cannot read `{}`", path.display());
    let (mut file, _) = open_regular(path).with_context(context)?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0; 256 << 10];
    loop {
        let n = file.read(&mut buf).with_context(context)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// Step 2: hashes in dependency order.
struct Settle<'a> {
    sources: &'a [Source],
    analysed: Vec<Analysed>,
    index: &'a HashMap<&'a str, usize>,
    old: &'a State,
    static_url: &'a str,
    /// (hash, references with the hash each was rewritten with).
    hash: Vec<Option<(String, Vec<(String, String)>)>>,
    rewritten: Vec<Option<Vec<u8>>>,
    visiting: Vec<bool>,
    warnings: Vec<String>,
}

impl Settle<'_> {
    fn visit(&mut self, i: usize) -> Result<()> {
        if self.hash[i].is_some() {
            return Ok(());
        }
        let targets = self.analysed[i].targets.clone();
        if targets.is_empty() {
            self.hash[i] = Some((self.analysed[i].digest.clone(), Vec::new()));
            return Ok(());
        }
        self.visiting[i] = true;
        let mut refs = Vec::with_capacity(targets.len());
        for target in targets {
            let Some(&j) = self.index.get(target.as_str()) else {
                continue;
            };
            if self.visiting[j] {
                self.warnings.push(format!(
                    "`{}` references `{target}`, which references it back (directly or not); \
                     that reference keeps the plain name, which is not cached for ever",
                    self.sources[i].rel
                ));
                refs.push((target, String::new()));
                continue;
            }
            self.visit(j)?;
            let hash = self.hash[j].as_ref().expect("visited").0.clone();
            refs.push((target, hash));
        }
        self.visiting[i] = false;
        let rel = &self.sources[i].rel;
        let prev = self.old.files.get(rel);
        if let Some(prev) = prev.filter(|p| self.analysed[i].unchanged && p.refs == refs) {
            self.hash[i] = Some((prev.hash.clone(), refs));
            return Ok(());
        }
        let rewritten = match self.analysed[i].read.as_ref() {
            Some((bytes, found)) => apply(bytes, found, &refs),
            None => {
                let (bytes, found) = self.read(i)?;
                apply(&bytes, &found, &refs)
            }
        };
        self.hash[i] = Some((digest(&rewritten), refs));
        self.rewritten[i] = Some(rewritten);
        Ok(())
    }

    /// Reads a file whose references were known from the state.
    fn read(&self, i: usize) -> Result<(Vec<u8>, Vec<Ref>)> {
        let source = &self.sources[i];
        let bytes = read_regular(&source.path, MAX_TEXT)
            .with_context(|| format!("cannot read `{}`", source.path.display()))?;
        let exists = |rel: &str| self.index.contains_key(rel);
        let kind = refs::kind(&source.rel);
        let found = refs::find(kind, &bytes, &source.rel, self.static_url, &exists);
        Ok((bytes, found))
    }

    fn rewrite_fresh(&self, i: usize) -> Result<Vec<u8>> {
        let (bytes, found) = self.read(i)?;
        let refs = &self.hash[i].as_ref().expect("visited").1;
        Ok(apply(&bytes, &found, refs))
    }
}

fn apply(bytes: &[u8], found: &[Ref], refs: &[(String, String)]) -> Vec<u8> {
    let hashes: HashMap<&str, &str> = refs
        .iter()
        .filter(|(_, h)| h.len() >= HASH_LEN)
        .map(|(t, h)| (t.as_str(), h.as_str()))
        .collect();
    refs::rewrite(bytes, found, &|target: &str| {
        hashes.get(target).map(|h| (*h).to_owned())
    })
}
