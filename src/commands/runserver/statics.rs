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

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::fs::File;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;

use super::body::{empty, plain, BoxError, ProxyBody};

/// Bytes read from disk at a time. With the reader one chunk ahead, this
/// bounds what a response holds of a file, besides hyper's write buffer.
const CHUNK: usize = 64 * 1024;

/// A client that takes no data for this long loses its file: the reader
/// stops and closes it, and the response fails (the connection is closed)
/// when hyper next asks the body for data (#9).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

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
struct Validators {
    etag: String,
    last_modified: String,
    modified: SystemTime,
}

impl Validators {
    fn of(meta: &std::fs::Metadata) -> Validators {
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Validators {
            etag: format!("\"{:x}-{:x}\"", meta.len(), nanos),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        }
    }

    /// `If-None-Match`, or else `If-Modified-Since`, says the client's copy
    /// is current.
    fn not_modified(&self, request: &HeaderMap) -> bool {
        match request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            Some(tags) => tags
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == self.etag || t == "*"),
            None => request
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .is_some_and(|since| whole_seconds(self.modified) <= whole_seconds(since)),
        }
    }

    /// RFC 9110 §13.1.5: a Range is honoured only while the client's
    /// validator still names this file: an entity tag by strong comparison
    /// (a weak tag never matches), a date only when it is exactly our
    /// Last-Modified. Anything else is false, and the whole file is sent.
    fn if_range_holds(&self, request: &HeaderMap) -> bool {
        let Some(value) = request.get(header::IF_RANGE) else {
            return true;
        };
        let Ok(value) = value.to_str().map(str::trim) else {
            return false;
        };
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        httpdate::parse_http_date(value)
            .is_ok_and(|date| whole_seconds(date) == whole_seconds(self.modified))
    }
}

/// HTTP dates have whole seconds.
fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No usable range: send the whole file with 200.
    Whole,
    /// These bytes, with 206.
    Part(Range<u64>),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// Parses a single byte range (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-`
/// or `bytes=-n`. A header we cannot use (another unit, bad syntax) is
/// ignored, as the RFC allows.
fn parse_range(value: &str, len: u64) -> Ranged {
    let Some((unit, set)) = value.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        // Several ranges would need a multipart/byteranges body. A server
        // may ignore Range and send the whole file (RFC 9110 §14.2), and
        // browsers and download tools ask for one range at a time.
        return Ranged::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    // Digits only; a number too large for u64 is still a number, past
    // any end.
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (number(first), number(last)) {
        (Some(first), parsed) => {
            let last = match parsed {
                Some(last) if last < first => return Ranged::Whole,
                None if !last.is_empty() => return Ranged::Whole,
                parsed => parsed,
            };
            if first >= len {
                return Ranged::Unsatisfiable;
            }
            let end = last.map_or(len, |last| last.saturating_add(1).min(len));
            Ranged::Part(first..end)
        }
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len - suffix.min(len)..len)
            }
        }
        _ => Ranged::Whole,
    }
}

/// The bytes `span` of `file`, read from disk a chunk at a time.
///
/// A task of its own reads ahead by one chunk into a channel of one, so a
/// response holds at most a few chunks besides hyper's write buffer, however
/// large the file (#9). The reader, not the body, owns the file: hyper
/// stops polling a body whose client has stopped reading, so only the
/// reader can notice that no chunk was taken for [`SEND_TIMEOUT`], and then
/// it closes the file. A reader that ends before the last byte (that
/// timeout, a read error, a file that shrank) makes the body fail, so the
/// connection is aborted instead of waiting for bytes that never come.
fn file_body(file: File, span: Range<u64>) -> ProxyBody {
    let (tx, rx) = mpsc::channel(1);
    let remaining = span.end - span.start;
    tokio::spawn(read_chunks(file, span, tx));
    FileBody { rx, remaining }.boxed()
}

async fn read_chunks(mut file: File, span: Range<u64>, tx: mpsc::Sender<io::Result<Bytes>>) {
    if let Err(err) = file.seek(SeekFrom::Start(span.start)).await {
        let _ = tx.send(Err(err)).await;
        return;
    }
    let mut file = file.take(span.end - span.start);
    loop {
        let mut chunk = BytesMut::with_capacity(CHUNK);
        let read = match file.read_buf(&mut chunk).await {
            Ok(0) if file.limit() == 0 => return,
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            )),
            Ok(_) => Ok(chunk.freeze()),
            Err(err) => Err(err),
        };
        let failed = read.is_err();
        match tokio::time::timeout(SEND_TIMEOUT, tx.send(read)).await {
            // Sent, and more to read.
            Ok(Ok(())) if !failed => {}
            // The error is sent, the client went away, or it stopped
            // reading: either way the file closes here.
            _ => return,
        }
    }
}

struct FileBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(Ok(chunk)) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(err)) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(err.into())))
            }
            None => {
                self.remaining = 0;
                Poll::Ready(Some(Err(
                    "the client took no data for too long; the file was closed".into(),
                )))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

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

    #[test]
    fn single_byte_ranges() {
        use Ranged::*;
        for (header, expected) in [
            ("bytes=0-0", Part(0..1)),
            ("bytes=10-19", Part(10..20)),
            ("bytes=10-", Part(10..100)),
            ("bytes=-10", Part(90..100)),
            ("bytes=90-1000", Part(90..100)),
            ("bytes=-1000", Part(0..100)),
            ("bytes=99-99", Part(99..100)),
            ("bytes=0-99999999999999999999999", Part(0..100)),
            ("Bytes = 5-6", Part(5..7)),
            ("bytes=5-6, ", Part(5..7)),
        ] {
            assert_eq!(parse_range(header, 100), expected, "{header}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        for header in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(header, 100), Ranged::Unsatisfiable, "{header}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn unusable_ranges_get_the_whole_file() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=6-5",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1 -2",
            "bytes=--1",
            "items=0-1",
            // Several ranges: answered with the whole file, see parse_range.
            "bytes=0-1,5-6",
            "bytes=0-1, 200-300",
        ] {
            assert_eq!(parse_range(header, 100), Ranged::Whole, "{header}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let modified = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let v = Validators {
            etag: "\"64-abc\"".into(),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        };
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_RANGE, value.parse().unwrap());
            v.if_range_holds(&h)
        };
        assert!(v.if_range_holds(&HeaderMap::new()));
        assert!(with("\"64-abc\""));
        assert!(with(&v.last_modified));
        assert!(!with("W/\"64-abc\""), "a weak tag never matches");
        assert!(!with("\"64-abd\""));
        assert!(!with(&httpdate::fmt_http_date(
            modified + Duration::from_secs(1)
        )));
        assert!(!with(&httpdate::fmt_http_date(
            modified - Duration::from_secs(1)
        )));
        assert!(!with("yesterday"));
    }
}
