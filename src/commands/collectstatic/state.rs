//! The two files collectstatic keeps in its output directory.
//!
//! `staticfiles.json` is the manifest the app reads (plain name → hashed
//! name), in the format of Django's ManifestStaticFilesStorage so that
//! tools that know one know the other. `.collectstatic.json` is manage's
//! own memory of the last run: for each source, its stamp, digest and
//! references, the hashed name that came out and the files written with
//! their stamps. A dot file, so nginx never serves it and install.sh does
//! not ship it. A state that cannot be read is treated as no state: the
//! next run checks every file, which is slower, never wrong.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::walk::Stamp;

pub const MANIFEST: &str = "staticfiles.json";
pub const STATE: &str = ".collectstatic.json";
const STATE_VERSION: u32 = 1;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub files: BTreeMap<String, Entry>,
}

/// What the last run knew and did for one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub stamp: Stamp,
    /// SHA-256 of the source as read.
    pub digest: String,
    /// Tree paths it references, each with the hash it was rewritten with.
    pub refs: Vec<(String, String)>,
    /// The hash in its name (of the content after rewriting).
    pub hash: String,
    /// Files written for it, relative to the output directory.
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    pub size: u64,
    pub mtime_ns: i128,
}

impl State {
    pub fn load(out_dir: &Path) -> State {
        let Ok(bytes) = crate::files::read_regular(&out_dir.join(STATE), 256 << 20) else {
            return State::default();
        };
        match serde_json::from_slice::<State>(&bytes) {
            Ok(state) if state.version == STATE_VERSION => state,
            _ => State::default(),
        }
    }

    pub fn new(files: BTreeMap<String, Entry>) -> State {
        State {
            version: STATE_VERSION,
            files,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the state serialises")
    }
}

/// `staticfiles.json`: `{"paths": {...}, "version": "1.1", "hash": ...}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub paths: BTreeMap<String, String>,
    pub version: String,
    pub hash: String,
}

impl Manifest {
    pub fn new(paths: BTreeMap<String, String>) -> Manifest {
        let mut all = String::new();
        for (plain, hashed) in &paths {
            all.push_str(plain);
            all.push('\0');
            all.push_str(hashed);
            all.push('\0');
        }
        let hash = super::hashing::digest(all.as_bytes())[..super::hashing::HASH_LEN].to_owned();
        Manifest {
            paths,
            version: "1.1".into(),
            hash,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("the manifest serialises");
        bytes.push(b'\n');
        bytes
    }
}

/// Whether `dir` is empty, missing, or was written by collectstatic: only
/// then may `--clear` empty it.
pub fn clearable(dir: &Path) -> std::io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none() || dir.join(STATE).is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}
