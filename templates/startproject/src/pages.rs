//! Pages: the Jinja templates in `templates/` (minijinja), auto-escaped
//! (`.html`), with `static("css/site.css")` for static file URLs.
//!
//! In debug builds every render reads its templates from disk, so an edit
//! is on screen at the next request with no build (`manage runserver`
//! reloads the tab). Release builds carry them inside the binary (build.rs
//! embeds `templates/`), so a deployment needs no template directory.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};
use serde::Serialize;

/// Where the templates are read from in debug builds.
#[cfg(debug_assertions)]
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    #[cfg(debug_assertions)]
    env.set_loader(minijinja::path_loader(DIR));
    #[cfg(not(debug_assertions))]
    minijinja_embed::load_templates!(&mut env);
    // An undefined variable is a mistake, not an empty string.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_global("project", env!("CARGO_PKG_NAME"));
    env.add_function("static", |path: &str| {
        Value::from_safe_string(attribute_escape(&crate::static_files::static_url(path)))
    });
    env
}

/// A URL made safe for an HTML attribute, its slashes kept (minijinja's
/// auto-escaping writes `/` as `&#x2f;`, which is correct but unreadable
/// and hides the static links from tools that look for them).
fn attribute_escape(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `name` with `context`; the error names the template and line.
pub fn render(name: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
    #[cfg(debug_assertions)]
    let env = environment();
    #[cfg(not(debug_assertions))]
    let env = {
        static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
        ENV.get_or_init(environment)
    };
    env.get_template(name)?
        .render(Value::from_serialize(context))
}

/// A page, or the 500 page when it cannot be rendered (the reason is
/// logged, with minijinja's file and line).
pub fn page(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    match render(name, context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => server_error_because(&format!("cannot render {name}: {err:#}")),
    }
}

/// The 404 page (the router's fallback).
pub async fn not_found() -> Response {
    not_found_page()
}

pub fn not_found_page() -> Response {
    page(StatusCode::NOT_FOUND, "404.html", ())
}

/// The 500 page for a handler that panicked (tower-http's `CatchPanic`),
/// with the panic's message as the reason.
pub fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    server_error_because(&format!("a handler panicked: {message}"))
}

/// Logs `reason` and answers with the 500 page, which shows the reason in
/// debug builds (as Django's DEBUG page does: the developer sees a template
/// or database error in the browser) and never in release builds.
pub fn server_error_because(reason: &str) -> Response {
    tracing::error!("{reason}");
    error_page(cfg!(debug_assertions).then_some(reason))
}

/// The 500 page; plain text when even that template fails.
fn error_page(detail: Option<&str>) -> Response {
    match render("500.html", minijinja::context! { detail }) {
        Ok(html) => (StatusCode::INTERNAL_SERVER_ERROR, Html(html)).into_response(),
        Err(err) => {
            tracing::error!("cannot render 500.html: {err:#}");
            let text = match detail {
                Some(detail) => format!("server error: {detail}\n"),
                None => "server error\n".to_owned(),
            };
            (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_undefined_variables_are_errors() {
        let mut env = environment();
        env.add_template("t.html", "{{ x }}").unwrap();
        let html = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { x => "<b>" })
            .unwrap();
        assert_eq!(html, "&lt;b&gt;");
        assert!(env.get_template("t.html").unwrap().render(()).is_err());
    }

    #[test]
    fn static_urls_keep_their_slashes_and_lose_quotes() {
        assert_eq!(
            attribute_escape("/static/css/site.css"),
            "/static/css/site.css"
        );
        assert_eq!(
            attribute_escape("/s/\"><x>&'"),
            "/s/&quot;&gt;&lt;x&gt;&amp;&#x27;"
        );
    }
}
