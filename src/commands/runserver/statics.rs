//! Static files, served by the dev proxy as Django's runserver does.
//!
//! `STATIC_URL` maps onto the static directory and nothing else: the
//! request path is decoded exactly once and then checked segment by
//! segment, so `..` in any spelling (`%2e%2e`, `%2f`, backslashes, double
//! encoding), NUL bytes and dot files answer 404; the final path is
//! canonicalised and must still lie inside the canonical static directory,
//! so symlinks that lead out answer 404 too. No directory listings.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::body::{empty, full, plain, ProxyBody};

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
        let Some(file) = self.resolve(path) else {
            return not_found();
        };
        let Ok(meta) = tokio::fs::metadata(&file).await else {
            return not_found();
        };
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let etag = format!("\"{:x}-{:x}\"", meta.len(), nanos);
        let last_modified = httpdate::fmt_http_date(modified);

        let not_modified = match request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            Some(tags) => tags
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*"),
            None => request
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .is_some_and(|since| {
                    // HTTP dates have whole seconds.
                    modified
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .zip(since.duration_since(UNIX_EPOCH).ok())
                        .is_some_and(|(m, s)| m.as_secs() <= s.as_secs())
                }),
        };

        let mut builder = Response::builder()
            .header(header::ETAG, &etag)
            .header(header::LAST_MODIFIED, &last_modified)
            .header(header::CACHE_CONTROL, "no-cache");
        if not_modified {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .expect("valid response");
        }
        let mime = mime_guess::from_path(&file).first_or_octet_stream();
        let content_type =
            if mime.type_() == "text" || mime.essence_str() == "application/javascript" {
                format!("{}; charset=utf-8", mime.essence_str())
            } else {
                mime.essence_str().to_owned()
            };
        builder = builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-content-type-options", "nosniff");
        if method == Method::HEAD {
            return builder
                .header(header::CONTENT_LENGTH, meta.len())
                .body(empty())
                .expect("valid response");
        }
        match tokio::fs::read(&file).await {
            Ok(bytes) => builder.body(full(bytes)).expect("valid response"),
            Err(_) => not_found(),
        }
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
}
