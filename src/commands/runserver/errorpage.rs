//! Why there is no app (a [`Problem`]), told to a browser as HTML and to
//! any other client as plain text; the same fragment is the overlay in
//! open tabs and the body of the error page.
//!
//! rustc's rendering (with ANSI colour) becomes HTML through ansi-to-html,
//! which escapes everything; every other value is escaped by the template.

use minijinja::context;
use serde::Serialize;

use super::build::Failure;
use super::child::Exit;
use super::editor::{self, Editor};
use super::state::Problem;
use crate::render;

#[derive(Serialize)]
struct DiagnosticView {
    file: Option<String>,
    line: Option<usize>,
    /// The editor link for `file:line`, escaped.
    href: Option<String>,
    message: String,
    /// Already-escaped HTML.
    html: String,
}

fn ansi_html(text: &str) -> String {
    ansi_to_html::convert(text).unwrap_or_else(|_| {
        // Unparseable escape sequences: drop them, escape the rest.
        html_escape(&console::strip_ansi_codes(text))
    })
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The title and HTML fragment for a problem. `hold` is how long a
/// request waits for a build; `editor` makes file:line links.
pub fn describe(
    problem: &Problem,
    hold: std::time::Duration,
    editor: Option<&Editor>,
) -> (&'static str, String) {
    match problem {
        Problem::BuildFailed(failure) => ("Build failed", build_failed(failure, editor)),
        Problem::Crashed(exit) => ("The app exited", crashed(exit, editor)),
        Problem::NotReady(why) => ("The app is not running", not_running(why)),
        Problem::Building => ("Building", building(hold.as_secs())),
    }
}

/// The same problem as plain text, for clients that are not browsers.
pub fn text(problem: &Problem, hold: std::time::Duration) -> String {
    match problem {
        Problem::BuildFailed(failure) => {
            let mut text = String::from(
                "manage: the build failed, so there is no app to serve this request.\n\
                 Fix the errors below and save; service resumes by itself.\n\n",
            );
            for d in failure.diagnostics.iter().filter(|d| d.is_error) {
                text.push_str(&console::strip_ansi_codes(&d.rendered));
                text.push('\n');
            }
            for e in &failure.cargo_errors {
                text.push_str(e);
                text.push('\n');
            }
            text
        }
        Problem::Crashed(exit) => format!(
            "manage: the app exited ({}); save a change to rebuild and restart it.\n\n{}\n",
            exit.describe(),
            console::strip_ansi_codes(&exit.output_tail.join("\n"))
        ),
        Problem::NotReady(why) => format!("manage: the app is not running: {why}\n"),
        Problem::Building => format!(
            "manage: the app is still building; this request waited {} s.\n",
            hold.as_secs()
        ),
    }
}

/// The HTML fragment for a failed build (errors first, then warnings).
fn build_failed(failure: &Failure, editor: Option<&Editor>) -> String {
    let diagnostics = &failure.diagnostics;
    let errors = failure.errors();
    let mut shown: Vec<_> = diagnostics.iter().filter(|d| d.is_error).collect();
    shown.extend(diagnostics.iter().filter(|d| !d.is_error));
    let views: Vec<DiagnosticView> = shown
        .into_iter()
        .map(|d| DiagnosticView {
            file: d.file.clone(),
            line: d.line,
            href: match (editor, &d.file, d.line) {
                (Some(editor), Some(file), Some(line)) => {
                    editor.href(file, u32::try_from(line).unwrap_or(1), 1)
                }
                _ => None,
            },
            message: d.message.clone(),
            html: editor::linkify(&ansi_html(d.rendered.trim_end()), editor),
        })
        .collect();
    let summary = format!(
        "{errors} error{} from cargo build.",
        if errors == 1 { "" } else { "s" }
    );
    fragment(context! {
        kind => "build",
        summary,
        diagnostics => views,
        cargo_errors => failure.cargo_errors,
    })
}

/// The HTML fragment for an app that exited.
fn crashed(exit: &Exit, editor: Option<&Editor>) -> String {
    fragment(context! {
        kind => "crash",
        status => exit.describe(),
        stderr_html => editor::linkify(&ansi_html(&exit.output_tail.join("\n")), editor),
    })
}

fn building(waited_secs: u64) -> String {
    fragment(context! { kind => "building", waited => waited_secs })
}

/// The HTML fragment listing unapplied migrations.
pub fn migrations(pending: &[String]) -> String {
    fragment(context! { kind => "migrations", pending })
}

pub fn not_running(why: &str) -> String {
    fragment(context! { kind => "other", summary => why })
}

fn fragment(ctx: minijinja::Value) -> String {
    render::render_embedded("runserver/problem.html.jinja", &ctx)
        .unwrap_or_else(|err| format!("<pre>{}</pre>", html_escape(&format!("{err:#}"))))
}

/// A whole page around a fragment.
pub fn page(title: &str, fragment: &str, livereload: bool) -> String {
    render::render_embedded(
        "runserver/errorpage.html.jinja",
        &context! { title, problem => fragment, livereload },
    )
    .unwrap_or_else(|err| format!("<pre>{}</pre>", html_escape(&format!("{err:#}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::runserver::build::Diagnostic;

    #[test]
    fn everything_is_escaped() {
        let d = Diagnostic {
            is_error: true,
            rendered: "\u{1b}[1m\u{1b}[38;5;9merror\u{1b}[0m: <script>alert(1)</script> & more"
                .into(),
            message: "<img src=x onerror=alert(1)>".into(),
            file: Some("src/<main>.rs".into()),
            line: Some(3),
        };
        let html = build_failed(
            &Failure {
                diagnostics: vec![d],
                cargo_errors: vec!["error: <b>cargo</b>".into()],
                elapsed: std::time::Duration::ZERO,
            },
            None,
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>cargo"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;main&gt;.rs:3"), "{html}");
        assert!(html.contains("<span"), "ANSI colour became HTML: {html}");
        assert!(!html.contains('\u{1b}'), "{html}");
    }
}
