//! The routes: `/` (welcome page), `/healthz` (ready when the database
//! answers), `/notes` (a list and a form: the database pattern to copy).

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};

use crate::db::Db;

const WELCOME: &str = include_str!("welcome.html");
const NOTES: &str = include_str!("notes.html");
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
/// The largest form body /notes reads.
const MAX_FORM: usize = 16 * 1024;

pub async fn route(req: Request<Incoming>, db: &Db) -> Response<Full<Bytes>> {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    // Static files, when no nginx serves them (STATIC_ROOT is set).
    if readable {
        if let Some(response) = crate::static_files::serve(req.uri().path()).await {
            return response;
        }
    }
    match (req.uri().path(), req.method()) {
        ("/", _) if readable => {
            // Static links resolved once (hashed names in production).
            static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let page = PAGE.get_or_init(|| crate::static_files::resolve(WELCOME));
            respond(StatusCode::OK, HTML, page.as_str())
        }
        ("/healthz", _) if readable => {
            // Not ready while the database is unreachable: runserver and the
            // deploy's restart gate wait, and nginx's checks see it.
            let mut response = if db.is_ready().await {
                respond(StatusCode::OK, TEXT, "ok\n")
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "database unavailable\n",
                )
            };
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        ("/notes", _) if readable => list_notes(db).await,
        ("/notes", &Method::POST) => add_note(req, db).await,
        ("/", _) | ("/healthz", _) => not_allowed("GET, HEAD"),
        ("/notes", _) => not_allowed("GET, HEAD, POST"),
        _ => respond(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
}

async fn list_notes(db: &Db) -> Response<Full<Bytes>> {
    match db.notes(50).await {
        Ok(notes) => {
            let items: String = notes
                .iter()
                .map(|n| format!("<li>{}</li>\n", escape(n)))
                .collect();
            respond(
                StatusCode::OK,
                HTML,
                NOTES.replace("<!-- notes -->\n", &items),
            )
        }
        Err(err) => database_error(err),
    }
}

/// A form POST (`body=...`) adds a note, then redirects to the list (so a
/// reload does not post it again).
async fn add_note(req: Request<Incoming>, db: &Db) -> Response<Full<Bytes>> {
    let Ok(form) = Limited::new(req.into_body(), MAX_FORM).collect().await else {
        return respond(StatusCode::PAYLOAD_TOO_LARGE, TEXT, "form too large\n");
    };
    let form = form.to_bytes();
    let body = form_urlencoded::parse(&form)
        .find(|(k, _)| k == "body")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if body.is_empty() {
        return respond(StatusCode::BAD_REQUEST, TEXT, "the note is empty\n");
    }
    match db.add_note(&body).await {
        Ok(()) => {
            let mut response = respond(StatusCode::SEE_OTHER, TEXT, "");
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/notes"));
            response
        }
        Err(err) => database_error(err),
    }
}

fn database_error(err: sqlx::Error) -> Response<Full<Bytes>> {
    eprintln!("database error: {err}");
    let hint = if err.to_string().contains("notes") {
        " (have the migrations been applied? `manage migrate`)"
    } else {
        ""
    };
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        TEXT,
        format!("database error{hint}\n"),
    )
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
