//! Live reload: the event channel every open tab listens to, and the
//! script and banner that [`super::inject`] puts into HTML pages.
//!
//! One origin for everything: the events are server-sent events at
//! `/__manage/events` on the same address as the app, so it works behind
//! tunnels and HTTPS terminators (cargo-leptos's separate reload port is a
//! known source of bugs). A `hello` event carries this process's id and the
//! swap generation, so a tab that reconnects after manage restarted, or
//! after missing a swap, reloads.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::Response;
use serde_json::json;
use tokio::sync::broadcast;

use super::body::ProxyBody;
use super::events::Events;

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

/// At most this many tabs listen at once; more get 503 (each holds a
/// connection and a file descriptor of manage's).
pub const MAX_LISTENERS: usize = 256;

/// Fans events out to every connected tab.
pub struct Hub {
    tx: broadcast::Sender<Event>,
    instance: String,
    generation: AtomicU64,
    listeners: Arc<AtomicUsize>,
    events: Events,
}

/// Counts one listening tab while its stream lives.
struct Listener(Arc<AtomicUsize>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(events: Events) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(64);
        let mut id = [0u8; 8];
        let _ = getrandom::getrandom(&mut id);
        Arc::new(Hub {
            tx,
            instance: id.iter().map(|b| format!("{b:02x}")).collect(),
            generation: AtomicU64::new(0),
            listeners: Arc::new(AtomicUsize::new(0)),
            events,
        })
    }

    pub fn send(&self, event: Event) {
        if matches!(event, Event::Reload) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.broadcast(event);
    }

    /// A new build takes over: the generation moves on first, then `switch`
    /// sends traffic to it, then the tabs are told. So every page of the new
    /// build carries the new generation, and a tab that loads one during
    /// the switch does not reload a second time.
    pub fn reload_after(&self, switch: impl FnOnce()) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        switch();
        self.broadcast(Event::Reload);
    }

    fn broadcast(&self, event: Event) {
        let generation = self.generation.load(Ordering::Acquire);
        let fields = match &event {
            Event::Reload => json!({ "kind": "reload", "generation": generation }),
            Event::Css(urls) => json!({ "kind": "css", "urls": urls, "generation": generation }),
            Event::Overlay(_) => json!({ "kind": "overlay", "generation": generation }),
            Event::Clear => json!({ "kind": "clear", "generation": generation }),
        };
        // No tab listening is fine.
        let tabs = self.tx.send(event).unwrap_or(0);
        let mut fields = fields;
        fields["tabs"] = tabs.into();
        self.events.emit("reload-sent", fields);
    }

    /// How many times a new build (or a static change) told tabs to reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The `text/event-stream` response for one tab.
    pub fn events_response(&self) -> Response<ProxyBody> {
        if self.listeners.fetch_add(1, Ordering::AcqRel) >= MAX_LISTENERS {
            self.listeners.fetch_sub(1, Ordering::AcqRel);
            let mut busy = super::body::plain(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "manage: too many live-reload connections\n",
            );
            // The script's EventSource retries by itself later.
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return busy;
        }
        let listener = Listener(self.listeners.clone());
        let hello = format!(
            "retry: 500\nevent: hello\ndata: {{\"instance\":\"{}\",\"generation\":{}}}\n\n",
            self.instance,
            self.generation.load(Ordering::Acquire)
        );
        let rx = self.tx.subscribe();
        let first =
            stream::once(async move { Ok::<_, Infallible>(Frame::data(Bytes::from(hello))) });
        let rest = stream::unfold((rx, listener), |(mut rx, listener)| async move {
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
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from(frame))),
                (rx, listener),
            ))
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

/// Which banner a page carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Banner {
    None,
    /// The newest build is broken; the last good one serves.
    LastGoodBuild,
    /// The database has unapplied migrations.
    Migrations,
}

/// What goes into HTML pages, rendered once at start-up: nothing or the
/// live-reload script normally, a banner (and script) while the newest
/// build is broken or migrations are unapplied.
pub struct Snippets {
    normal: Option<String>,
    banner: String,
    migrations: String,
}

impl Snippets {
    pub fn new(livereload: bool) -> anyhow::Result<Snippets> {
        let render = |banner: &str| {
            crate::render::render_embedded(
                "runserver/inject.html.jinja",
                &minijinja::context! { livereload, banner, generation_mark => GENERATION_MARK },
            )
        };
        Ok(Snippets {
            normal: if livereload { Some(render("")?) } else { None },
            banner: render("build")?,
            migrations: render("migrations")?,
        })
    }

    /// The snippet for a page of build `generation`, if it gets one. The
    /// page tells its script which build it came from, so a swap before
    /// the script connects still reloads it.
    pub fn for_page(&self, banner: Banner, generation: u64) -> Option<String> {
        let snippet = match banner {
            Banner::LastGoodBuild => Some(self.banner.as_str()),
            Banner::Migrations => Some(self.migrations.as_str()),
            Banner::None => self.normal.as_deref(),
        };
        snippet.map(|s| s.replace(GENERATION_MARK, &generation.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_sees_the_new_generation_before_the_tabs_hear_of_it() {
        let hub = Hub::new(Events::none());
        let mut rx = hub.tx.subscribe();
        hub.send(Event::Reload);
        assert_eq!(hub.generation(), 1);
        let _ = rx.try_recv();
        hub.reload_after(|| {
            assert_eq!(hub.generation(), 2);
            assert!(rx.try_recv().is_err(), "told before the switch");
        });
        assert!(matches!(rx.try_recv(), Ok(Event::Reload)));
        assert_eq!(hub.generation(), 2);
    }

    #[test]
    fn events_are_single_line_json() {
        let html = Arc::new("<b>a</b>\n<i>b</i>".to_owned());
        let frame = encode(&Event::Overlay(html));
        assert_eq!(frame.matches('\n').count(), 3, "{frame:?}");
        assert!(frame.starts_with("event: overlay\ndata: \""));
    }
}
