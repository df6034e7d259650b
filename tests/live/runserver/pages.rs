//! What the dev proxy does to real pages of a generated project: the
//! live-reload script and the banner while the newest build is broken,
//! and pages left alone with `--no-livereload`. The events and the error
//! pages in front of any app: `tests/integration/runserver/livereload.rs`.

use crate::support::runserver::{start_scaffold, REBUILD};
use crate::support::{eventually, get, html_get};

#[test]
fn html_pages_get_the_script_and_a_banner_while_the_newest_build_is_broken() {
    let server = start_scaffold("dp-banner", &[]);
    let page = html_get(&server.addr, "/");
    let text = page.text();
    // Generation 1: the first build's start told (no) tabs to reload once.
    assert!(
        text.contains(
            "<script src=\"/__manage/livereload.js\" data-generation=\"1\"></script>\n</body>"
        ),
        "{text}"
    );
    assert_eq!(
        page.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );
    assert!(!text.contains("__manage_banner"));
    let js = get(&server.addr, "/__manage/livereload.js").unwrap();
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().contains("EventSource(\"/__manage/events\")"));
    // Non-HTML responses are untouched.
    assert_eq!(get(&server.addr, "/healthz").unwrap().text(), "ok\n");

    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    let _x: u8 = \"two\";",
    );
    server.expect_outcome("build-failed", REBUILD);
    let page = html_get(&server.addr, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .text()
        .contains("showing the last good build — the current code does not compile"));
    assert!(page.text().contains("href=\"/__manage/errors\""));
    let errors = html_get(&server.addr, "/__manage/errors");
    assert_eq!(errors.status, 200);
    assert!(
        errors.text().contains("mismatched types"),
        "{}",
        errors.text()
    );
    // rustc's closing note stays in the terminal, not as an error card.
    assert!(
        !errors.text().contains("rustc --explain"),
        "{}",
        errors.text()
    );
    assert!(errors.text().contains("src&#x2f;main.rs") || errors.text().contains("src/main.rs"));

    server.edit("src/main.rs", "\n    let _x: u8 = \"two\";", "");
    let fixed = eventually(REBUILD, || {
        let page = html_get(&server.addr, "/");
        (!page.text().contains("__manage_banner")).then_some(())
    });
    assert!(fixed.is_some(), "the banner stayed after the fix");
}

#[test]
fn no_livereload_leaves_pages_as_the_app_sent_them() {
    let server = start_scaffold("dp-nolr", &["--no-livereload"]);
    let page = html_get(&server.addr, "/");
    // The page byte for byte as the app itself answers it, asked directly.
    let app = crate::support::app_descendants(server.proc.pid());
    assert_eq!(app.len(), 1, "one app process: {app:?}");
    let port = crate::support::listening_ports_of(app[0])[0];
    let direct = html_get(&format!("127.0.0.1:{port}"), "/");
    assert_eq!(direct.status, 200);
    assert_eq!(page.text(), direct.text());
    assert!(!page.text().contains("__manage"), "{}", page.text());
    // No manifest in development: plain static names.
    assert!(page.text().contains(r#"href="/static/css/site.css""#));
}
