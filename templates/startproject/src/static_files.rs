//! Static files: their URLs (hashed names in production, plain in
//! development), and serving them where no nginx stands in front.
//!
//! `manage collectstatic` gives every static file a content-hashed name
//! (`css/site.3f2a1b4c5d6e.css`) that nginx lets browsers cache for a year,
//! and writes `staticfiles.json`, mapping plain names to hashed ones. In
//! production the units `manage deploy-config` writes point
//! `STATIC_MANIFEST` at that file and set `STATIC_URL`. Without a manifest
//! (`manage runserver`, `cargo run`) names stay plain, and the development
//! server serves `static/` as it is.
//!
//! Where no nginx stands in front (Kubernetes behind an ingress), the app
//! serves the files itself: with `STATIC_ROOT` set (the container image
//! sets it), GET and HEAD under `STATIC_URL` read from that directory
//! (tower-http's `ServeDir`, with the `.br`/`.gz` copies collectstatic
//! writes), hashed names cached for a year.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::services::ServeDir;

struct Statics {
    url: String,
    /// Plain name -> hashed name, from the manifest; `None` without one.
    hashed: Option<HashMap<String, String>>,
    /// The hashed names, for their cache header.
    immutable: HashSet<String>,
}

fn statics() -> &'static Statics {
    static STATICS: OnceLock<Statics> = OnceLock::new();
    STATICS.get_or_init(|| {
        let mut url = std::env::var("STATIC_URL").unwrap_or_else(|_| "/static/".to_owned());
        if !url.ends_with('/') {
            url.push('/');
        }
        let hashed = std::env::var_os("STATIC_MANIFEST").and_then(|path| {
            read_manifest(std::path::Path::new(&path))
                .map_err(|err| {
                    tracing::warn!(
                        "cannot use the static manifest {}: {err}; serving plain names",
                        path.to_string_lossy()
                    )
                })
                .ok()
        });
        let immutable = hashed.iter().flat_map(|m| m.values().cloned()).collect();
        Statics {
            url,
            hashed,
            immutable,
        }
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
///
/// With a manifest, a name it lacks (a typo, or a file added after
/// collectstatic ran) is logged and linked by its plain name.
pub fn static_url(path: &str) -> String {
    let statics = statics();
    let name = match &statics.hashed {
        None => path,
        Some(hashed) => match hashed.get(path) {
            Some(name) => name.as_str(),
            None => {
                tracing::warn!(
                    "static file `{path}` is not in STATIC_MANIFEST (a typo, or run \
                     `manage collectstatic` again); linking the plain name"
                );
                path
            }
        },
    };
    format!("{}{name}", statics.url)
}

/// `router` with `STATIC_ROOT` served under `STATIC_URL`, when it is set;
/// what is not a file there is answered by `not_found`.
pub fn serve(router: Router, not_found: fn() -> Response) -> Router {
    let Some(root) = std::env::var_os("STATIC_ROOT").map(PathBuf::from) else {
        return router;
    };
    let files = ServeDir::new(&root)
        .append_index_html_on_directories(false)
        .precompressed_br()
        .precompressed_gzip();
    let url = statics().url.trim_end_matches('/').to_owned();
    let files = Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(move |request, next| {
            guard(root.clone(), not_found, request, next)
        }));
    if url.is_empty() {
        router.merge(files)
    } else {
        router.nest(&url, files)
    }
}

/// Only plain names of regular files below the root: no dot files, no
/// percent-encoding (so no `%2e%2e`), no directories, FIFOs or devices;
/// and the cache and type headers.
async fn guard(
    root: PathBuf,
    not_found: fn() -> Response,
    request: Request,
    next: Next,
) -> Response {
    let name = request.uri().path().trim_start_matches('/').to_owned();
    let plain = |segment: &str| {
        !segment.is_empty() && !segment.starts_with('.') && !segment.contains(['%', '\\', '\0'])
    };
    let regular = name.split('/').all(plain)
        && tokio::fs::metadata(root.join(&name))
            .await
            .is_ok_and(|meta| meta.is_file());
    if !regular {
        return not_found();
    }
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let immutable = statics().immutable.contains(&name);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "public, max-age=3600"
            }),
        );
    }
    response
}
