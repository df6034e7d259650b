//! URLs of static files: hashed names in production, plain in development.
//!
//! `manage collectstatic` gives every static file a content-hashed name
//! (`css/site.3f2a1b4c5d6e.css`) that nginx lets browsers cache for a year,
//! and writes `staticfiles.json`, mapping plain names to hashed ones. In
//! production the systemd unit that `manage deploy-config` writes points
//! `STATIC_MANIFEST` at that file and sets `STATIC_URL`. Without a manifest
//! (`manage runserver`, `cargo run`) names stay plain, and the development
//! server serves `static/` as it is.

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
        out.push_str(&static_url(&rest[start + OPEN.len()..start + OPEN.len() + len]));
        rest = &rest[start + OPEN.len() + len + CLOSE.len()..];
    }
    out.push_str(rest);
    out
}
