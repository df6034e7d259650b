//! Live reload and the error pages as a browser meets them in front of
//! any app (#4): the events an open tab gets (a stylesheet swapped, a
//! reload after a static change or a new build, the overlay of a failed
//! build, escaped), and the pages while no app serves (a failed first
//! build, a crash) for browsers and for other clients. In front of the
//! std-only echo app.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::fixtures;
use crate::support::runserver::{Start, FIRST_BUILD, REBUILD};
use crate::support::{get, get_with, html_get};

#[test]
fn live_reload_events_follow_builds_and_static_changes() {
    let server = Start::new(fixtures::echo_with_static("rs-events")).ready();
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
    server.edit(
        "src/main.rs",
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v2\";",
    );
    events.expect("reload", REBUILD);
    assert_eq!(get(&server.addr, "/version").unwrap().text(), "v2");

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
fn without_an_app_browsers_get_the_error_page_and_other_clients_text() {
    let (tmp, dir) = fixtures::copy(
        "echo-app",
        &[("name = \"echo-app\"", "name = \"rs-nobuild\"")],
    );
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
    assert_eq!(
        html_get(&server.addr, "/version").status,
        200,
        "never recovered"
    );

    // A crash: the page says how the app ended.
    let children = crate::support::app_descendants(server.proc.pid());
    // SAFETY: kill(2) on the app this test started through manage.
    unsafe {
        libc::kill(children[0], libc::SIGKILL);
    }
    server.wait_event("app-exited", REBUILD);
    let page = html_get(&server.addr, "/version");
    assert_eq!(page.status, 502);
    assert!(page.text().contains("The app exited"), "{}", page.text());
    assert!(
        page.text().contains("killed by signal 9"),
        "{}",
        page.text()
    );
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
