//! The handlers: `/` (the welcome page), `/healthz` (ready when the
//! database answers), `/notes` (a list and a form: the database pattern to
//! copy). Routing and middleware are in [`crate::app`].

use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use crate::db::Db;
use crate::pages::{page, server_error_because};

pub async fn welcome() -> Response {
    page(StatusCode::OK, "welcome.html", ())
}

/// Not ready while the database is unreachable: runserver and the deploy's
/// restart gate wait, and nginx's checks see it.
pub async fn healthz(State(db): State<Db>) -> Response {
    let (status, body) = if db.is_ready().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    };
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

pub async fn list_notes(State(db): State<Db>) -> Response {
    match db.notes(50).await {
        Ok(notes) => page(StatusCode::OK, "notes.html", context! { notes }),
        Err(err) => database_error(err),
    }
}

#[derive(Deserialize)]
pub struct NewNote {
    #[serde(default)]
    body: String,
}

/// A form POST (`body=...`) adds a note, then redirects to the list (so a
/// reload does not post it again).
pub async fn add_note(State(db): State<Db>, Form(note): Form<NewNote>) -> Response {
    let body = note.body.trim();
    if body.is_empty() {
        return (StatusCode::BAD_REQUEST, "the note is empty\n").into_response();
    }
    match db.add_note(body).await {
        Ok(()) => Redirect::to("/notes").into_response(),
        Err(err) => database_error(err),
    }
}

fn database_error(err: sqlx::Error) -> Response {
    if err.to_string().contains("notes") {
        server_error_because(&format!(
            "database error: {err} (have the migrations been applied? `manage migrate`)"
        ))
    } else {
        server_error_because(&format!("database error: {err}"))
    }
}
