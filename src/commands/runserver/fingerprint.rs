//! What a watched file holds, found cheaply and safely.
//!
//! A project can contain anything: a FIFO (reading it blocks forever), a
//! symlink to `/dev/zero` (reading it never ends), a multi-gigabyte data
//! file. So only regular files are read, they are opened non-blocking and
//! checked again after opening, size and mtime decide first, and content is
//! hashed in bounded chunks only for files up to [`MAX_HASHED`]; a larger
//! file counts as changed when its size or mtime does.

use std::fs::File;
use std::hash::Hasher as _;
use std::io::Read as _;
use std::path::Path;
use std::time::SystemTime;

/// Files up to this size are hashed, so a save that changes nothing does
/// not rebuild; larger ones are judged by size and mtime.
pub const MAX_HASHED: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    mtime: Option<SystemTime>,
    hash: Option<u64>,
}

impl Fingerprint {
    /// Whether `self` (newer) says the content differs from `old`.
    pub fn differs_from(&self, old: &Fingerprint) -> bool {
        match (self.hash, old.hash) {
            (Some(new), Some(old)) => new != old,
            _ => self.len != old.len || self.mtime != old.mtime,
        }
    }
}

/// The fingerprint of `path`, or `None` when it is not a readable regular
/// file. With the `previous` fingerprint, a file whose size and mtime did
/// not change is not read again.
pub fn of(path: &Path, previous: Option<&Fingerprint>) -> Option<Fingerprint> {
    // Follows symlinks, and never blocks: a FIFO is only stat-ed.
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let mtime = meta.modified().ok();
    if let Some(prev) = previous {
        if prev.len == len && prev.mtime == mtime {
            return Some(*prev);
        }
    }
    if len > MAX_HASHED {
        return Some(Fingerprint {
            len,
            mtime,
            hash: None,
        });
    }
    // Judged again by the handle: swapped for a FIFO since the stat?
    let (mut file, _) = crate::files::open_regular(path).ok()?;
    Some(Fingerprint {
        len,
        mtime,
        hash: Some(hash(&mut file)?),
    })
}

/// Hashes at most [`MAX_HASHED`] bytes, a chunk at a time (a file that
/// grows while it is read is not followed forever).
fn hash(file: &mut File) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = MAX_HASHED + 1;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want]).ok()?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
        left -= n as u64;
    }
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path in our own temp dir.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(of(&fifo, None), None, "a FIFO is never opened");
        let zero = tmp.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(of(&zero, None), None, "a device is never read");
        assert_eq!(of(tmp.path(), None), None, "nor a directory");
    }

    #[test]
    fn content_decides_for_small_files_size_and_mtime_for_large_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let small = tmp.path().join("a.rs");
        std::fs::write(&small, "fn main() {}").unwrap();
        let first = of(&small, None).unwrap();
        // Same content, new mtime: not a change.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&small)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let touched = of(&small, Some(&first)).unwrap();
        assert!(!touched.differs_from(&first));
        std::fs::write(&small, "fn main() { }").unwrap();
        assert!(of(&small, Some(&touched)).unwrap().differs_from(&touched));

        let big = tmp.path().join("data.bin");
        let f = File::create(&big).unwrap();
        f.set_len(MAX_HASHED * 64).unwrap(); // sparse: 1 GiB, no disk used
        let fp = of(&big, None).unwrap();
        assert_eq!(fp.hash, None, "a large file is not read");
        f.set_len(MAX_HASHED * 64 + 1).unwrap();
        assert!(of(&big, Some(&fp)).unwrap().differs_from(&fp));
    }
}
