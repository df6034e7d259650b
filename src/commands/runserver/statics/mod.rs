//! Static files, served by the dev proxy as Django's runserver does.
//!
//! `STATIC_URL` maps onto the static directory and nothing else: the
//! request path is decoded exactly once and then checked segment by
//! segment, so `..` in any spelling (`%2e%2e`, `%2f`, backslashes, double
//! encoding), NUL bytes and dot files answer 404; the final path is
//! canonicalised and must still lie inside the canonical static directory,
//! so symlinks that lead out answer 404 too. No directory listings.
//!
//! Only regular files are read, and they are streamed from disk a chunk at
//! a time, so a huge file or a client that stops reading costs a few
//! chunks of memory, not the file (#9). A single byte range is answered
//! with 206 (or 416), so media seeking and resumed downloads work.

use std::path::{Path, PathBuf};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::fs::File;

use super::body::{empty, plain, ProxyBody};

mod ranges;
mod stream;

use self::ranges::*;
use self::stream::*;

/// Bytes read from disk at a time. With the reader one chunk ahead, this
/// bounds what a response holds of a file, besides hyper's write buffer.
const CHUNK: usize = 64 * 1024;

// A client that takes no data for this long loses its file: the reader
// stops and closes it, and the connection is closed (#9).
use super::stall::send_timeout;

pub struct Statics {
    /// URL prefix, always with a leading and a trailing `/`.
    pub url: String,
    /// Canonical directory.
    root: PathBuf,
}

impl Statics {
    /// `None` when the directory does not exist (nothing to serve).
    pub fn new(url: &str, dir: &Path) -> Option<Statics> {
        let root = std::fs::canonicalize(dir).ok()?;
        if !root.is_dir() {
            return None;
        }
        let mut url = url.trim().to_owned();
        if !url.starts_with('/') {
            url.insert(0, '/');
        }
        if !url.ends_with('/') {
            url.push('/');
        }
        Some(Statics { url, root })
    }

    pub fn matches(&self, path: &str) -> bool {
        path.starts_with(&self.url)
    }

    /// The file a request path names, if it is safely inside the root.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let raw = path.strip_prefix(&self.url)?;
        if raw.is_empty() || raw.contains('\\') {
            return None;
        }
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        // A `%` left after one decoding is double encoding: refuse it.
        if decoded.contains(['%', '\\', '\0']) {
            return None;
        }
        let mut candidate = self.root.clone();
        for segment in decoded.split('/') {
            if segment.is_empty() || segment.starts_with('.') || segment.contains(':') {
                return None;
            }
            candidate.push(segment);
        }
        let real = std::fs::canonicalize(&candidate).ok()?;
        (real.starts_with(&self.root) && real.is_file()).then_some(real)
    }

    pub async fn serve(
        &self,
        method: &Method,
        path: &str,
        request: &HeaderMap,
    ) -> Response<ProxyBody> {
        if method != Method::GET && method != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let Some(path) = self.resolve(path) else {
            return not_found();
        };
        let Some((file, meta)) = open_regular(&path).await else {
            return not_found();
        };
        let validators = Validators::of(&meta);
        let mut builder = Response::builder()
            .header(header::ETAG, &validators.etag)
            .header(header::LAST_MODIFIED, &validators.last_modified)
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::ACCEPT_RANGES, "bytes");
        // RFC 9110 §13.2.2: the cache validators come before Range.
        if validators.not_modified(request) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .expect("valid response");
        }
        let mime = mime_guess::from_path(&path).first_or_octet_stream();
        let content_type =
            if mime.type_() == "text" || mime.essence_str() == "application/javascript" {
                format!("{}; charset=utf-8", mime.essence_str())
            } else {
                mime.essence_str().to_owned()
            };
        builder = builder
            .header(header::CONTENT_TYPE, content_type)
            .header("x-content-type-options", "nosniff");

        let len = meta.len();
        // GET is the only method with range handling (RFC 9110 §14.2), so
        // HEAD ignores Range and describes the whole file, as a GET without
        // Range would get it.
        let range = request
            .get(header::RANGE)
            .filter(|_| method == Method::GET && validators.if_range_holds(request))
            .and_then(|v| v.to_str().ok())
            .map_or(Ranged::Whole, |v| parse_range(v, len));
        let span = match range {
            Ranged::Whole => {
                builder = builder.status(StatusCode::OK);
                0..len
            }
            Ranged::Part(span) => {
                builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{len}", span.start, span.end - 1),
                );
                span
            }
            Ranged::Unsatisfiable => {
                let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                let headers = r.headers_mut();
                let all = format!("bytes */{len}");
                headers.insert(header::CONTENT_RANGE, all.parse().expect("ascii"));
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return r;
            }
        };
        builder = builder.header(header::CONTENT_LENGTH, span.end - span.start);
        let body = if method == Method::HEAD || span.is_empty() {
            empty()
        } else {
            file_body(file, span)
        };
        builder.body(body).expect("valid response")
    }
}

/// Opens `path` for reading only if it is a regular file.
///
/// `resolve` already checked the type, but the path can be swapped for a
/// FIFO or a device in between. Opening with `O_NONBLOCK` never waits for
/// a FIFO's writer, and the type that counts is the one of the handle we
/// hold (fstat), so nothing but a regular file is ever read (#9). Size and
/// time come from the same handle, so the headers describe what is sent.
async fn open_regular(path: &Path) -> Option<(File, std::fs::Metadata)> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .await
        .ok()?;
    let meta = file.metadata().await.ok()?;
    meta.is_file().then_some((file, meta))
}

/// What a response tells caches about the file, and the checks against it.
fn not_found() -> Response<ProxyBody> {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Statics) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("static");
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("css/site.css"), "body{}").unwrap();
        std::fs::write(root.join(".env"), "SECRET").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "SECRET").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("css/site.css"), root.join("inside.css")).unwrap();
        let statics = Statics::new("/static/", &root).unwrap();
        (tmp, statics)
    }

    #[test]
    fn serves_files_inside() {
        let (_t, s) = fixture();
        assert!(s.resolve("/static/css/site.css").is_some());
        assert!(
            s.resolve("/static/css%2Fsite.css").is_some(),
            "an encoded slash inside the root is fine"
        );
        assert!(s.resolve("/static/inside.css").is_some());
    }

    #[test]
    fn refuses_every_way_out() {
        let (_t, s) = fixture();
        for bad in [
            "/static/../secret.txt",
            "/static/css/../../secret.txt",
            "/static/%2e%2e/secret.txt",
            "/static/%2E%2E%2Fsecret.txt",
            "/static/..%2fsecret.txt",
            "/static/..%5csecret.txt",
            "/static/..\\secret.txt",
            "/static/%252e%252e/secret.txt",
            "/static/%2e%2e%252fsecret.txt",
            "/static//etc/passwd",
            "/static/%2fetc%2fpasswd",
            "/static/css/site.css%00.txt",
            "/static/link.txt",
            "/static/.env",
            "/static/css",
            "/static/css/",
            "/static/",
            "/static/C:/x",
        ] {
            assert_eq!(s.resolve(bad), None, "{bad} resolved");
        }
    }
}
