//! What the dev proxy does to pages in front of a generated project: the
//! live-reload script and events, the banner while the newest build is
//! broken, the error page while no app serves, and pages left alone.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::runserver::{start_scaffold, Start, FIRST_BUILD, REBUILD};
use crate::support::{self, eventually, get, request, Response};

#[test]
fn live_reload_events_follow_builds_and_static_changes() {
    let server = start_scaffold("dp-events", &[]);
    let mut events = Events::open(&server.addr);

    // A stylesheet: swapped in place, no build.
    let css = server.dir.join("static/css/site.css");
    fs::write(
        &css,
        fs::read_to_string(&css).unwrap() + "\nh1 { color: teal; }\n",
    )
    .unwrap();
    let data = events.expect("css", Duration::from_secs(30));
    assert_eq!(data, "[\"/static/css/site.css\"]");
    let builds = server.count_within("build-started", Duration::from_secs(2));
    assert_eq!(
        builds,
        0,
        "a stylesheet rebuilt the app: {}",
        server.events_text()
    );

    // Another static file: a reload, still no build.
    fs::write(
        server.dir.join("static/favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    events.expect("reload", Duration::from_secs(30));

    // Code: a reload once the new build serves.
    server.rename_in_code(None, "events two");
    events.expect("reload", REBUILD);
    assert_eq!(server.title().as_deref(), Some("events two is running"));

    // A broken build: the overlay, with the compiler's words, escaped.
    server.edit(
        "src/main.rs",
        "fn main() {",
        "fn main() {\n    let _x: Vec<u8> = \"<b>not bytes</b>\";",
    );
    let overlay = events.expect("overlay", REBUILD);
    assert!(overlay.contains("mismatched types"), "{overlay}");
    assert!(
        overlay.contains("&lt;b&gt;not bytes"),
        "not escaped: {overlay}"
    );
    assert!(!overlay.contains("<b>not bytes"), "not escaped: {overlay}");
}

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

#[test]
fn without_an_app_browsers_get_the_error_page_and_other_clients_text() {
    let (tmp, dir) = support::generate("dp-nobuild");
    let main = dir.join("src/main.rs");
    let good = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        good.replace("fn main() {", "fn main() {\n    let _x: u8 = \"<first>\";"),
    )
    .unwrap();
    let server = Start::new((tmp, dir)).spawn();
    server.expect_outcome("build-failed", FIRST_BUILD);

    let page = html_get(&server.addr, "/some/page");
    assert_eq!(page.status, 503);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let text = page.text();
    assert!(text.contains("The build failed"), "{text}");
    assert!(text.contains("mismatched types"), "{text}");
    assert!(
        text.contains("&quot;&lt;first&gt;&quot;") || text.contains("&lt;first&gt;"),
        "{text}"
    );
    assert!(
        text.contains("/__manage/livereload.js"),
        "the page recovers by itself"
    );

    let plain = get_with(&server.addr, "/api", "Accept: application/json\r\n");
    assert_eq!(plain.status, 503);
    assert!(plain
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        plain.text().contains("the build failed"),
        "{}",
        plain.text()
    );

    server.skip_events();
    fs::write(&main, good).unwrap();
    server.wait_swapped(REBUILD);
    assert_eq!(html_get(&server.addr, "/").status, 200, "never recovered");

    // A crash: the page says how the app ended.
    let children = crate::support::app_descendants(server.proc.pid());
    // SAFETY: kill(2) on the app this test started through manage.
    unsafe {
        libc::kill(children[0], libc::SIGKILL);
    }
    server.wait_event("app-exited", REBUILD);
    let page = html_get(&server.addr, "/");
    assert_eq!(page.status, 502);
    assert!(page.text().contains("The app exited"), "{}", page.text());
    assert!(
        page.text().contains("killed by signal 9"),
        "{}",
        page.text()
    );
}

pub(super) fn get_with(addr: &str, path: &str, extra: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
    )
    .unwrap()
}

fn html_get(addr: &str, path: &str) -> Response {
    get_with(addr, path, "Accept: text/html,application/xhtml+xml\r\n")
}

/// A server-sent-events connection to `/__manage/events`.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn open(addr: &str) -> Events {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /__manage/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut events = Events {
            reader: BufReader::new(stream),
        };
        let (name, data) = events.next(FIRST_BUILD).expect("hello");
        assert_eq!(name, "hello");
        assert!(data.contains("\"instance\""), "{data}");
        events
    }

    /// The next event (name, data), skipping comments.
    fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + timeout;
        let (mut name, mut data) = (String::new(), String::new());
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => continue, // read timeout: keep waiting
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = v.to_owned();
            } else if line.is_empty() && !name.is_empty() {
                return Some((name, data));
            }
        }
        None
    }

    fn expect(&mut self, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some((name, data)) if name == wanted => return data,
                Some(other) => seen.push(other),
                None => break,
            }
        }
        panic!("no `{wanted}` event; saw {seen:?}");
    }
}
