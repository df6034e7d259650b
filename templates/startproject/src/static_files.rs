//! URLs of static files: hashed names in production, plain in development.
//!
//! `manage collectstatic` gives every static file a content-hashed name
//! (`css/site.3f2a1b4c5d6e.css`) that nginx lets browsers cache for a year,
//! and writes `staticfiles.json`, mapping plain names to hashed ones. In
//! production the systemd unit that `manage deploy-config` writes points
//! `STATIC_MANIFEST` at that file and sets `STATIC_URL`. Without a manifest
//! (`manage runserver`, `cargo run`) names stay plain, and the development
//! server serves `static/` as it is.
//!
//! Where no nginx stands in front (Kubernetes behind an ingress), the app
//! serves the files itself: with `STATIC_ROOT` set (the container image
//! sets it), GET and HEAD under `STATIC_URL` read from that directory,
//! hashed names cached for a year.

use std::collections::HashMap;
use std::sync::OnceLock;

struct Statics {
    url: String,
    hashed: HashMap<String, String>,
}

fn statics() -> &'static Statics {
    static STATICS: OnceLock<Statics> = OnceLock::new();
    STATICS.get_or_init(|| {
        let url = std::env::var("STATIC_URL").unwrap_or_else(|_| "/static/".to_owned());
        let hashed = match std::env::var_os("STATIC_MANIFEST") {
            Some(path) => read_manifest(std::path::Path::new(&path)).unwrap_or_else(|err| {
                eprintln!(
                    "warning: cannot use the static manifest {}: {err}; serving plain names",
                    path.to_string_lossy()
                );
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        Statics { url, hashed }
    })
}

fn read_manifest(path: &std::path::Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    serde_json::from_value(manifest["paths"].take()).map_err(|e| format!("`paths`: {e}"))
}

/// The URL of a static file, by its path under `static/`:
/// `static_url("css/site.css")` is `/static/css/site.3f2a1b4c5d6e.css` in
/// production and `/static/css/site.css` in development.
pub fn static_url(path: &str) -> String {
    let statics = statics();
    let name = statics.hashed.get(path).map_or(path, String::as_str);
    format!("{}{name}", statics.url)
}

/// `html` with every `{{ static("PATH") }}` replaced by `static_url(PATH)`.
pub fn resolve(html: &str) -> String {
    const OPEN: &str = "{{ static(\"";
    const CLOSE: &str = "\") }}";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        let Some(len) = rest[start + OPEN.len()..].find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&static_url(
            &rest[start + OPEN.len()..start + OPEN.len() + len],
        ));
        rest = &rest[start + OPEN.len() + len + CLOSE.len()..];
    }
    out.push_str(rest);
    out
}

/// The largest file [`serve`] reads into memory.
const MAX_FILE: u64 = 32 * 1024 * 1024;

/// The response for `path` when it is under `STATIC_URL` and `STATIC_ROOT`
/// is set; `None` for every other path. Only plain names below the root are
/// served: no `..`, no dot files, no percent-encoding, regular files only.
pub async fn serve(
    path: &str,
) -> Option<hyper::Response<http_body_util::Full<hyper::body::Bytes>>> {
    use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
    static ROOT: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let root = ROOT
        .get_or_init(|| std::env::var_os("STATIC_ROOT").map(std::path::PathBuf::from))
        .as_ref()?;
    let statics = statics();
    let name = path.strip_prefix(statics.url.as_str())?;
    let plain = |segment: &str| {
        !segment.is_empty() && !segment.starts_with('.') && !segment.contains(['%', '\\', '\0'])
    };
    let not_found = || {
        let mut response = hyper::Response::new(http_body_util::Full::new("not found\n".into()));
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        response
    };
    if !name.split('/').all(plain) {
        return Some(not_found());
    }
    let file = root.join(name);
    let readable = match tokio::fs::metadata(&file).await {
        Ok(meta) => meta.is_file() && meta.len() <= MAX_FILE,
        Err(_) => false,
    };
    let Ok(body) = (if readable {
        tokio::fs::read(&file).await
    } else {
        Err(std::io::ErrorKind::NotFound.into())
    }) else {
        return Some(not_found());
    };
    let mut response = hyper::Response::new(http_body_util::Full::new(body.into()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A hashed name never changes its content.
    let hashed = statics.hashed.values().any(|h| h == name);
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=3600"
        }),
    );
    Some(response)
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext.to_ascii_lowercase().as_str() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}
