//! One real browser: headless Chromium, driven through chromedriver's W3C
//! WebDriver HTTP API on loopback, watches `manage runserver` live-reload
//! the welcome page, show the build error overlay, and recover, while the
//! test only edits source files and reads the open page (it navigates once).
//!
//! Chromium and chromedriver are required, not optional: on Debian they are
//! the `chromium` and `chromium-driver` packages, which `.ci/run` installs.
//! Set `MANAGE_TEST_SCREENSHOT_DIR` to keep a screenshot of the overlay.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::runserver::{start_scaffold, Session, REBUILD};
use crate::support::{descendants, eventually, free_port, Running};

/// Flags Chromium needs as root in a container, plus quiet networking.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// `name` on PATH, or a failure that says which package provides it.
fn required_program(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: the browser test needs it (Debian package \
             `{package}`; `.ci/run` installs it when missing)"
        )
    })
}

/// A WebDriver session in a headless Chromium, closed on drop.
struct Browser {
    driver: Running,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromium = required_program("chromium", "chromium");
        let chromedriver = required_program("chromedriver", "chromium-driver");
        let port = free_port();
        let mut cmd = std::process::Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg("--log-level=WARNING");
        let driver = Running::start(cmd);
        let addr = format!("127.0.0.1:{port}");
        let ready = eventually(Duration::from_secs(30), || {
            let status = http(&addr, "GET", "/status", None).ok()?;
            (status["value"]["ready"] == json!(true)).then_some(())
        });
        assert!(ready.is_some(), "chromedriver did not get ready in 30 s");

        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": args,
                    }
                }
            }
        });
        let created = http(&addr, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|err| panic!("creating a WebDriver session failed: {err}"));
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_owned();
        Browser {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        http(&self.addr, method, &path, body)
    }

    fn navigate(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .unwrap_or_else(|err| panic!("navigating to {url} failed: {err}"));
    }

    /// Runs `source` in every document before its own scripts (Chrome
    /// DevTools' `Page.addScriptToEvaluateOnNewDocument`, through
    /// chromedriver).
    fn on_every_page(&self, source: &str) {
        let body = json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": { "source": source },
        });
        self.command("POST", "/goog/cdp/execute", Some(&body))
            .unwrap_or_else(|err| panic!("adding a page script failed: {err}"));
    }

    /// Runs `script` (a function body) in the open page and returns its value.
    fn eval(&self, script: &str) -> Result<Value, String> {
        let body = json!({ "script": script, "args": [] });
        self.command("POST", "/execute/sync", Some(&body))
            .map(|v| v["value"].clone())
    }

    fn screenshot_png(&self) -> Vec<u8> {
        let shot = self
            .command("GET", "/screenshot", None)
            .unwrap_or_else(|err| panic!("screenshot failed: {err}"));
        base64_decode(shot["value"].as_str().expect("base64 screenshot"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closes Chromium; then the driver's process group is killed (by
        // `Running`), and anything Chromium left behind with it.
        let _ = http(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        for pid in descendants(self.driver.pid()) {
            // SAFETY: kill(2) on processes this test started (chromedriver's
            // descendants).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// One WebDriver call: JSON over HTTP/1.1 on loopback. chromedriver keeps
/// connections open whatever the request says, so the body is read by its
/// Content-Length. A WebDriver error (`value.error`) or a non-2xx status is
/// an `Err` with the message.
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{method} {path}: {e}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).map_err(|e| fail(&e))?;
    // Page loads and scripts are bounded by WebDriver's own timeouts (300 s
    // and 30 s by default); this only catches a hung driver.
    stream
        .set_read_timeout(Some(Duration::from_secs(330)))
        .map_err(|e| fail(&e))?;
    stream.write_all(request.as_bytes()).map_err(|e| fail(&e))?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(|e| fail(&e))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(&format!("bad status line {status_line:?}")))?;
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| fail(&e))? == 0 {
            return Err(fail(&"connection closed in the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut data = Vec::new();
    match length {
        Some(n) => {
            data.resize(n, 0);
            reader.read_exact(&mut data).map_err(|e| fail(&e))?;
        }
        None => {
            reader.read_to_end(&mut data).map_err(|e| fail(&e))?;
        }
    }
    let value: Value = serde_json::from_slice(&data).map_err(|e| {
        fail(&format!(
            "status {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&data)
        ))
    })?;
    if status / 100 != 2 || value["value"]["error"].is_string() {
        return Err(fail(&format!(
            "status {status}: {} {}",
            value["value"]["error"], value["value"]["message"]
        )));
    }
    Ok(value)
}

fn base64_decode(text: &str) -> Vec<u8> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(sextet) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Everything runserver printed and reported so far, for failure messages.
fn drain(server: &Session) -> String {
    format!(
        "{}\nits events:\n{}",
        server.log_text(),
        server.events_text()
    )
}

/// Polls `script` in the page every 100 ms until `ok` accepts its value;
/// panics with the last value (or error) and runserver's output after
/// `timeout`.
fn wait_for(
    browser: &Browser,
    server: &Session,
    what: &str,
    timeout: Duration,
    script: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last = Err("never evaluated".to_owned());
    while Instant::now() < deadline {
        // While the page reloads, a script may fail; that is not an answer.
        last = browser.eval(script);
        if let Ok(value) = &last {
            if ok(value) {
                return value.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the page never showed {what} within {timeout:?}; last {script:?} gave {last:?}\n\
         the page: {:?}\nrunserver said:\n{}",
        browser.eval(PROBE),
        drain(server)
    );
}

/// Observes, without changing anything, the events the page's own
/// EventSource receives: the test waits for `hello` (the page is listening)
/// before it changes a file, and checks which event did the work.
const SSE_SPY: &str = "(function () {\
       var Native = window.EventSource;\
       window.__testSse = [];\
       window.EventSource = function (url, init) {\
         var source = new Native(url, init);\
         ['hello', 'reload', 'css', 'overlay', 'clear'].forEach(function (name) {\
           source.addEventListener(name, function () { window.__testSse.push(name); });\
         });\
         return source;\
       };\
       window.EventSource.prototype = Native.prototype;\
     })();";

/// What the page loaded, for failure messages.
const PROBE: &str = "return { state: document.readyState, live: window.__manageLiveReload,\
       html: document.documentElement.outerHTML.slice(-400),\
       resources: performance.getEntriesByType('resource')\
         .map(function (e) { return e.name + ' ' + Math.round(e.duration) + 'ms'; }) };";
const TITLE: &str = "return document.title";
const STATE: &str = "var o = document.getElementById('__manage_overlay');\
     var b = document.getElementById('__manage_banner');\
     return { title: document.title, ready: document.readyState,\
       live: window.__manageLiveReload === true,\
       navigation: (performance.getEntriesByType('navigation')[0] || {}).type || null,\
       sse: window.__testSse || null,\
       overlay: o ? o.innerText : null, banner: b ? b.innerText : null };";

/// The page is loaded and its live-reload EventSource has had its `hello`,
/// so a change made now reaches it. (A page whose EventSource connects only
/// after a swap takes that swap's generation for its own and stays stale.)
fn listening(state: &Value) -> bool {
    state["ready"] == "complete"
        && state["live"] == true
        && state["sse"]
            .as_array()
            .is_some_and(|events| events.contains(&json!("hello")))
}

#[test]
fn the_open_page_follows_edits_errors_and_fixes() {
    let browser = Browser::start();

    let server = start_scaffold("browser-live", &[]);

    // The only navigation: open the welcome page.
    browser.on_every_page(SSE_SPY);
    browser.navigate(&format!("http://{}/", server.addr));
    let state = wait_for(
        &browser,
        &server,
        "the welcome page with live reload",
        Duration::from_secs(120),
        STATE,
        listening,
    );
    assert_eq!(state["title"], "browser-live is running", "{state}");
    assert_eq!(state["navigation"], "navigate", "{state}");
    assert!(
        state["overlay"].is_null() && state["banner"].is_null(),
        "{state}"
    );

    // 1. A template edit: the open page reloads itself and shows the new
    // title.
    server.retitle_template("{{ project }} is running", "First edit, live");
    wait_for(&browser, &server, "the edited title", REBUILD, TITLE, |t| {
        t == "First edit, live"
    });
    let state = wait_for(
        &browser,
        &server,
        "the reloaded page ready",
        Duration::from_secs(60),
        STATE,
        listening,
    );
    // The page was reloaded by its own script, not navigated by the test.
    assert_eq!(state["navigation"], "reload", "{state}");
    assert!(state["overlay"].is_null(), "{state}");

    // 2. A type error: the open page shows the compiler's message over the
    // last good build, which keeps serving.
    server.edit(
        "src/server.rs",
        "const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);",
        "const SHUTDOWN_GRACE: Duration = 10;",
    );
    let state = wait_for(
        &browser,
        &server,
        "the error overlay",
        REBUILD,
        STATE,
        |s| {
            s["overlay"]
                .as_str()
                .is_some_and(|text| text.contains("mismatched types"))
        },
    );
    let overlay = state["overlay"].as_str().unwrap();
    assert!(overlay.contains("The build failed"), "{overlay}");
    assert!(overlay.contains("src/server.rs"), "{overlay}");
    assert!(overlay.contains("SHUTDOWN_GRACE"), "{overlay}");
    // Shown over the page that was open, which was not replaced.
    assert_eq!(state["title"], "First edit, live", "{state}");
    assert_eq!(state["navigation"], "reload", "{state}");
    let events = state["sse"].as_array().unwrap();
    assert!(events.contains(&json!("overlay")), "{state}");
    assert!(!events.contains(&json!("reload")), "{state}");

    let png = browser.screenshot_png();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // For a person to look at: MANAGE_TEST_SCREENSHOT_DIR=/some/dir.
    if let Some(keep) = std::env::var_os("MANAGE_TEST_SCREENSHOT_DIR") {
        fs::create_dir_all(&keep).unwrap();
        fs::write(Path::new(&keep).join("browser-overlay.png"), &png).unwrap();
    }

    // 3. The fix, with a newer title: the overlay goes and the page shows
    // the newest text.
    server.retitle_template("First edit, live", "Fixed and newest");
    server.edit(
        "src/server.rs",
        "const SHUTDOWN_GRACE: Duration = 10;",
        "const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);",
    );
    wait_for(&browser, &server, "the newest title", REBUILD, TITLE, |t| {
        t == "Fixed and newest"
    });
    let state = wait_for(
        &browser,
        &server,
        "the recovered page",
        Duration::from_secs(60),
        STATE,
        listening,
    );
    assert!(state["overlay"].is_null(), "overlay still shown: {state}");
    assert!(state["banner"].is_null(), "banner still shown: {state}");
    assert_eq!(state["navigation"], "reload", "{state}");
}
