//! Live reload: the event channel every open tab listens to, and the
//! script and banner injected into HTML pages (what goes in, and which
//! responses may be rewritten at all).
//!
//! One origin for everything: the events are server-sent events at
//! `/__manage/events` on the same address as the app, so it works behind
//! tunnels and HTTPS terminators (cargo-leptos's separate reload port is a
//! known source of bugs). A `hello` event carries this process's id and the
//! swap generation, so a tab that reconnects after manage restarted, or
//! after missing a swap, reloads.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::Response;
use tokio::sync::broadcast;

use super::body::ProxyBody;

/// HTML bodies up to this size get the live-reload script.
const MAX_INJECT: u64 = 8 * 1024 * 1024;

/// Stands for the serving build's generation in the rendered snippets.
const GENERATION_MARK: &str = "__MANAGE_GENERATION__";

/// Something every open tab should know.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new build took over: reload.
    Reload,
    /// Only these stylesheets (URL paths) changed: swap them in place.
    Css(Vec<String>),
    /// The newest build failed or the app died: show this HTML.
    Overlay(Arc<String>),
    /// The newest build is fine again: remove the overlay.
    Clear,
}

/// Fans events out to every connected tab.
pub struct Hub {
    tx: broadcast::Sender<Event>,
    instance: String,
    generation: AtomicU64,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        let (tx, _) = broadcast::channel(64);
        let mut id = [0u8; 8];
        let _ = getrandom::getrandom(&mut id);
        Arc::new(Hub {
            tx,
            instance: id.iter().map(|b| format!("{b:02x}")).collect(),
            generation: AtomicU64::new(0),
        })
    }

    pub fn send(&self, event: Event) {
        if matches!(event, Event::Reload) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        // No tab listening is fine.
        let _ = self.tx.send(event);
    }

    /// How many times a new build (or a static change) told tabs to reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The `text/event-stream` response for one tab.
    pub fn events_response(&self) -> Response<ProxyBody> {
        let hello = format!(
            "retry: 500\nevent: hello\ndata: {{\"instance\":\"{}\",\"generation\":{}}}\n\n",
            self.instance,
            self.generation.load(Ordering::Acquire)
        );
        let rx = self.tx.subscribe();
        let first =
            stream::once(async move { Ok::<_, Infallible>(Frame::data(Bytes::from(hello))) });
        let rest = stream::unfold(rx, |mut rx| async move {
            let frame = tokio::select! {
                event = rx.recv() => match event {
                    Ok(event) => encode(&event),
                    // Fell behind: a reload is always a safe answer.
                    Err(broadcast::error::RecvError::Lagged(_)) => encode(&Event::Reload),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // A comment now and then keeps idle connections open.
                _ = tokio::time::sleep(Duration::from_secs(15)) => ": keep-alive\n\n".to_owned(),
            };
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(frame))), rx))
        });
        let body = StreamBody::new(futures_util::StreamExt::chain(first, rest));
        let mut response = Response::new(body.map_err(|never| match never {}).boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn encode(event: &Event) -> String {
    let (name, data) = match event {
        Event::Reload => ("reload", "{}".to_owned()),
        Event::Clear => ("clear", "{}".to_owned()),
        Event::Css(paths) => ("css", serde_json::to_string(paths).unwrap_or_default()),
        Event::Overlay(html) => (
            "overlay",
            serde_json::to_string(html.as_str()).unwrap_or_default(),
        ),
    };
    // JSON keeps `data` on one line, as SSE needs.
    format!("event: {name}\ndata: {data}\n\n")
}

/// What goes into HTML pages, rendered once at start-up: nothing or the
/// live-reload script normally, the banner (and script) while the newest
/// build is broken.
pub struct Snippets {
    normal: Option<String>,
    banner: String,
}

impl Snippets {
    pub fn new(livereload: bool) -> anyhow::Result<Snippets> {
        let render = |banner: bool| {
            crate::render::render_embedded(
                "runserver/inject.html.jinja",
                &minijinja::context! { livereload, banner, generation_mark => GENERATION_MARK },
            )
        };
        Ok(Snippets {
            normal: if livereload {
                Some(render(false)?)
            } else {
                None
            },
            banner: render(true)?,
        })
    }

    /// The snippet for a page of build `generation`, if it gets one. The
    /// page tells its script which build it came from, so a swap before
    /// the script connects still reloads it.
    pub fn for_page(&self, banner: bool, generation: u64) -> Option<String> {
        let snippet = if banner {
            Some(self.banner.as_str())
        } else {
            self.normal.as_deref()
        };
        snippet.map(|s| s.replace(GENERATION_MARK, &generation.to_string()))
    }
}

/// Whether a response is a complete, unencoded HTML page we may rewrite.
pub fn injectable(parts: &hyper::http::response::Parts) -> bool {
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let identity = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.eq_ignore_ascii_case("identity"));
    let bounded = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len <= MAX_INJECT);
    html && identity && bounded && parts.status.is_success()
}

/// Inserts `snippet` before the last `</body>` (any case), or at the end.
pub fn inject(html: &[u8], snippet: &str) -> Vec<u8> {
    let lower: Vec<u8> = html.iter().map(u8::to_ascii_lowercase).collect();
    let at = lower
        .windows(7)
        .rposition(|w| w == b"</body>")
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + snippet.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(snippet.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_before_the_last_closing_body() {
        let out = inject(
            b"<html><BODY>x</Body><!-- </body> in a comment --></BODY></html>",
            "[s]",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<html><BODY>x</Body><!-- </body> in a comment -->[s]</BODY></html>"
        );
        assert_eq!(inject(b"<p>no body", "[s]"), b"<p>no body[s]");
    }

    #[test]
    fn events_are_single_line_json() {
        let html = Arc::new("<b>a</b>\n<i>b</i>".to_owned());
        let frame = encode(&Event::Overlay(html));
        assert_eq!(frame.matches('\n').count(), 3, "{frame:?}");
        assert!(frame.starts_with("event: overlay\ndata: \""));
    }
}
