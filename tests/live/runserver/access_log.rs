//! The access log under runserver on a generated project: each request is
//! printed once (manage's line), unless the app is asked to log too; the
//! app's /metrics through the proxy.

use std::time::Duration;

use crate::support::runserver::Start;
use crate::support::{self, eventually, get};

/// Each request is printed once: manage's access line, not the app's too
/// (runserver sets ACCESS_LOG=off for the app); a user's ACCESS_LOG wins.
#[test]
fn each_request_is_logged_once_unless_the_app_is_asked_to_log_too() {
    let mut project = Some(support::generate("dp-once"));
    for (access_log, app_lines) in [(None, false), (Some("on"), true)] {
        let mut start = Start::new(project.take().unwrap())
            .shared_target()
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
