//! Content digests and the hashed names built from them.
//!
//! A hashed name puts the first 12 hex digits of the SHA-256 of the file's
//! final content before its extension, as Django's
//! ManifestStaticFilesStorage does with MD5: `css/site.css` becomes
//! `css/site.3f2a1b4c5d6e.css`. nginx's config caches exactly these names
//! for ever (`templates/deploy/nginx/nginx.conf.jinja`, the map on
//! `$static_cache_control`), so the two must agree on the shape.

use sha2::{Digest as _, Sha256};

/// How many hex digits of the digest go into a name.
pub const HASH_LEN: usize = 12;

/// The SHA-256 of `bytes` in lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// An incremental SHA-256, for files streamed rather than read whole.
#[derive(Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// `dir/name.ext` with `hash` before the last extension: `dir/name.HASH.ext`
/// (`name.HASH` for a name without one). Works on a relative path or on
/// the text of a URL path, whose last segment is the file's name.
pub fn hashed_name(path: &str, hash: &str) -> String {
    let hash = &hash[..HASH_LEN.min(hash.len())];
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let name = &path[name_start..];
    // A leading dot is not an extension separator (`.htaccess`).
    match name.rfind('.').filter(|&i| i > 0) {
        Some(dot) => {
            let at = name_start + dot;
            format!("{}.{hash}{}", &path[..at], &path[at..])
        }
        None => format!("{path}.{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_before_the_extension() {
        assert_eq!(
            hashed_name("css/site.css", "3f2a1b4c5d6e7f80"),
            "css/site.3f2a1b4c5d6e.css"
        );
        assert_eq!(
            hashed_name("js/jquery.min.js", "0123456789abcdef"),
            "js/jquery.min.0123456789ab.js"
        );
        assert_eq!(
            hashed_name("LICENSE", "0123456789ab"),
            "LICENSE.0123456789ab"
        );
        assert_eq!(
            hashed_name("a.b/LICENSE", "0123456789ab"),
            "a.b/LICENSE.0123456789ab"
        );
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::default();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), digest(b"abc"));
    }
}
