//! The dev proxy as a browser meets it (#4), in front of a generated
//! project: static files, live reload, errors in the page, the Host check,
//! limits.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::runserver::{start_scaffold, Start, FIRST_BUILD, REBUILD};
use crate::support::{self, eventually, get, request, Response};

#[test]
fn static_files_are_served_by_the_proxy_with_validators() {
    let server = start_scaffold("dp-static", &[]);
    let css = fs::read(server.dir.join("static/css/site.css")).unwrap();

    let r = get(&server.addr, "/static/css/site.css").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/css"),
        "{r:?}"
    );
    assert_eq!(r.body, css);
    let etag = r.header("etag").expect("etag").to_owned();
    let modified = r.header("last-modified").expect("last-modified").to_owned();

    let r = get_with(
        &server.addr,
        "/static/css/site.css",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = get_with(
        &server.addr,
        "/static/css/site.css",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(r.status, 304);

    let head = request(
        &server.addr,
        "HEAD /static/css/site.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(css.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    let svg = get(&server.addr, "/static/favicon.svg").unwrap();
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    for missing in [
        "/static/",
        "/static/css",
        "/static/css/",
        "/static/nope.css",
    ] {
        assert_eq!(get(&server.addr, missing).unwrap().status, 404, "{missing}");
    }
    let post = request(
        &server.addr,
        "POST /static/css/site.css HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);

    // Django-style access log lines; the app itself never saw /static/.
    let logged = server.wait_for_line(
        "\"GET /static/css/site.css HTTP/1.1\" 200",
        Duration::from_secs(5),
    );
    assert!(logged.starts_with('['), "{logged}");
    assert!(logged.ends_with(&format!(" 200 {}", css.len())), "{logged}");
    server.wait_for_line(
        "\"GET /static/css/site.css HTTP/1.1\" 304 0",
        Duration::from_secs(5),
    );
    let lines = server.lines_with("GET /static/");
    assert!(
        !lines.iter().any(|l| l.ends_with("ms")),
        "the app saw a static request: {lines:#?}"
    );
}

#[test]
fn nothing_outside_the_static_directory_can_be_read() {
    let server = start_scaffold("dp-traversal", &[]);
    std::os::unix::fs::symlink(
        server.dir.join("Cargo.toml"),
        server.dir.join("static/link.toml"),
    )
    .unwrap();
    fs::write(server.dir.join("static/.secret"), "[package] hidden").unwrap();
    for path in [
        "/static/../Cargo.toml",
        "/static/css/../../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/Cargo.toml",
        "/static/.%2e/Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/..%2FCargo.toml",
        "/static/%2e%2e%2fCargo.toml",
        "/static/..%5cCargo.toml",
        "/static/%252e%252e/Cargo.toml",
        "/static/%252e%252e%252fCargo.toml",
        "/static/%2f%2e%2e%2fCargo.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/css/site.css%00",
        "/static/%00../Cargo.toml",
        "/static/link.toml",
        "/static/.secret",
        "/static/%2esecret",
    ] {
        let r = get(&server.addr, path).unwrap();
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("[package]"), "{path} leaked");
    }
    // Targets hyper refuses to parse never reach a file either.
    for raw in ["/static/..\\Cargo.toml", "/static/\\..\\Cargo.toml"] {
        let r = get(&server.addr, raw).unwrap();
        assert!(matches!(r.status, 400 | 404), "{raw}: {}", r.status);
        assert!(!r.text().contains("[package]"), "{raw} leaked");
    }
    let absolute = request(
        &server.addr,
        "GET http://localhost/static/../Cargo.toml HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(!absolute.text().contains("[package]"));
}

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

#[test]
fn the_host_check_blocks_dns_rebinding() {
    let server = start_scaffold("dp-hosts", &["--allowed-host", "myapp.test"]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let with_host = |host: &str| {
        request(
            &server.addr,
            &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap()
    };
    for ok in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "myapp.test".to_owned(),
    ] {
        assert_eq!(with_host(&ok).status, 200, "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:80",
        "localhost.evil.example",
        "10.1.2.3",
    ] {
        let r = with_host(bad);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().contains("--allowed-host"), "{}", r.text());
    }
    let no_host = request(&server.addr, "GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(no_host.status, 400);
    // Not hosts at all: a clear 400, and the server goes on (these once
    // panicked the connection task).
    for malformed in [
        "[",
        "[abc",
        "[::1",
        "[::1]evil.example",
        "[::1]@evil.example",
        "localhost@evil.example",
        "localhost:99999999999",
    ] {
        let r = with_host(malformed);
        assert_eq!(r.status, 400, "{malformed}");
        assert!(r.text().contains("not a valid host"), "{}", r.text());
    }
    assert_eq!(with_host(&format!("localhost:{port}")).status, 200);
    let panics = server.lines_with("panicked");
    assert!(panics.is_empty(), "{panics:#?}");
}

#[test]
fn limits_and_slow_clients() {
    let server = start_scaffold("dp-limits", &[]);
    let huge = "x".repeat(64 * 1024);
    let r = request(
        &server.addr,
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {huge}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.status, 431);
    let r = request(&server.addr, "GARBAGE\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);

    // A client that never finishes its request holds up nobody else.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(get(&server.addr, "/healthz").unwrap().status, 200);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    drop(slow);
}

#[test]
fn quiet_silences_the_access_log() {
    let server = Start::new(support::generate("dp-quiet"))
        .global(&["-q"])
        .args(&["--migrate"])
        .ready();
    for _ in 0..3 {
        get(&server.addr, "/static/css/site.css").unwrap();
    }
    // What must not be printed: a window is all a test can give. manage
    // prints an access line as a response ends, well within it.
    std::thread::sleep(Duration::from_millis(500));
    let lines = server.lines_with("\"GET /");
    assert!(!lines.iter().any(|l| l.starts_with('[')), "{lines:#?}");
}

/// Each request is printed once: manage's access line, not the app's too
/// (runserver sets ACCESS_LOG=off for the app); a user's ACCESS_LOG wins.
#[test]
fn each_request_is_logged_once_unless_the_app_is_asked_to_log_too() {
    let mut project = Some(support::generate("dp-once"));
    for (access_log, app_lines) in [(None, false), (Some("on"), true)] {
        let mut start = Start::new(project.take().unwrap())
            .env_remove("ACCESS_LOG")
            .args(&["--migrate"]);
        if let Some(value) = access_log {
            start = start.env("ACCESS_LOG", value);
        }
        let server = start.ready();
        assert_eq!(get(&server.addr, "/logged-once").unwrap().status, 404);
        // manage's access line ...
        server.wait_for_line("\"GET /logged-once HTTP/1.1\" 404", Duration::from_secs(10));
        let app_line =
            |l: &String| !l.starts_with('[') && l.contains("\"GET /logged-once HTTP/1.1\" 404");
        if app_lines {
            // ... and the app's, when asked for.
            let seen = eventually(Duration::from_secs(10), || {
                server.lines_with("/logged-once").into_iter().find(app_line)
            });
            assert!(
                seen.is_some(),
                "ACCESS_LOG=on: no app line; {}",
                server.log_text()
            );
        } else {
            // ... and not the app's: a window for what must not come.
            std::thread::sleep(Duration::from_millis(500));
            let lines = server.lines_with("/logged-once");
            assert!(!lines.iter().any(app_line), "ACCESS_LOG unset: {lines:#?}");
        }
        // The app's /metrics through manage's proxy: the client it names
        // is this machine's.
        let metrics = get(&server.addr, "/metrics").unwrap();
        assert_eq!(metrics.status, 200, "{}", metrics.text());
        assert!(
            metrics.text().contains(r#"route="unmatched",status="404""#),
            "{}",
            metrics.text()
        );
        project = Some(server.stop());
    }
}

fn get_with(addr: &str, path: &str, extra: &str) -> Response {
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
