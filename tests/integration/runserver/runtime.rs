//! Files the app reads as it runs (a debug build's templates, a page read
//! from disk): saving one reloads the open tabs and runs no cargo at all;
//! a file the build read still rebuilds, and so does every file while the
//! newest build is broken or no app runs.

use std::time::Duration;

use crate::support::fixtures;
use crate::support::get;
use crate::support::runserver::{Start, REBUILD};

fn body(addr: &str, path: &str) -> String {
    get(addr, path).map(|r| r.text()).unwrap_or_default()
}

#[test]
fn a_file_read_at_run_time_reloads_tabs_with_no_build() {
    let server = Start::new(fixtures::copy("reads-page", &[])).ready();
    assert_eq!(body(&server.addr, "/"), "page v1\n");

    server.edit("page.html", "page v1", "page v2");
    let change = server.wait_event("change", Duration::from_secs(10));
    assert_eq!(
        change["runtime"],
        serde_json::json!(["page.html"]),
        "{change}"
    );
    assert_eq!(change["code"], serde_json::json!([]), "{change}");
    let reload = server.wait_event("reload-sent", Duration::from_secs(10));
    assert_eq!(reload["kind"], "reload", "{reload}");
    assert_eq!(body(&server.addr, "/"), "page v2\n");
    server.wait_for_line("not a build input, no build", Duration::from_secs(5));
    // No cargo: not a build started, not even one that finds nothing to do.
    let builds = server.count_within("build-started", Duration::from_secs(1));
    assert_eq!(builds, 0, "{}", server.events_text());

    // A file the build embeds is a source.
    server.edit("embedded.txt", "embedded v1", "embedded v2");
    server.wait_event("build-started", Duration::from_secs(10));
    server.wait_swapped(REBUILD);
    assert_eq!(body(&server.addr, "/embedded"), "embedded v2\n");

    // While the newest build is broken, every save builds: its fix may
    // add an input the last good build did not read.
    server.edit("src/main.rs", "fn main() {", "fn main() { let = ;");
    server.expect_outcome("build-failed", REBUILD);
    server.edit("page.html", "page v2", "page v3");
    server.wait_event("build-started", Duration::from_secs(10));
    server.expect_outcome("build-failed", REBUILD);
    server.edit("src/main.rs", "fn main() { let = ;", "fn main() {");
    server.wait_swapped(REBUILD);
    server.edit("page.html", "page v3", "page v4");
    server.wait_event("reload-sent", Duration::from_secs(10));
    assert_eq!(body(&server.addr, "/"), "page v4\n");
    let builds = server.count_within("build-started", Duration::from_secs(1));
    assert_eq!(builds, 0, "{}", server.events_text());
}

#[test]
fn with_no_app_running_any_save_starts_it_again() {
    let server = Start::new(fixtures::copy(
        "reads-page",
        &[("name = \"reads-page\"", "name = \"reads-page-crash\"")],
    ))
    .ready();
    let app = crate::support::app_descendants(server.proc.pid());
    assert_eq!(app.len(), 1, "{app:?}");
    // SAFETY: kill(2) on the app this test started through manage.
    unsafe {
        libc::kill(app[0], libc::SIGKILL);
    }
    server.wait_event("app-exited", Duration::from_secs(10));
    server.edit("page.html", "page v1", "page v2");
    let swapped = server.wait_swapped(REBUILD);
    assert_ne!(swapped["pid"], app[0], "{swapped}");
    assert_eq!(body(&server.addr, "/"), "page v2\n");
}
