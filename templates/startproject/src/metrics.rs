//! Prometheus metrics at `/metrics`, and the access line of each request.
//!
//! - `http_server_request_duration_seconds`: a histogram by method, route
//!   template (`/notes`, not `/notes?x=1`; `unmatched` for a 404) and
//!   status, as OpenTelemetry's HTTP conventions name it;
//! - `http_server_active_requests`: requests being answered now.
//!
//! `/metrics` answers only clients in `METRICS_ALLOW` (loopback by default;
//! add the Prometheus server's network). A request that came through a
//! proxy (`X-Forwarded-For`, `X-Real-IP` or `Forwarded`) is judged by the
//! client the proxy names: the proxy must be in `TRUSTED_PROXIES` and the
//! last `X-Forwarded-For` address (the one the proxy wrote) in
//! `METRICS_ALLOW`. So `manage runserver`'s proxy passes a local browser's
//! request, and the public, whom nginx or an ingress name, get a 404.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::net::Networks;
use crate::request_id;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// The metrics of this process, and who may read them; cheap to clone
/// (middleware state is cloned for every request).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    active: Gauge,
    allow: Networks,
    proxies: Networks,
}

fn histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// Metrics readable by `allow`, directly or through `proxies`.
    pub fn new(allow: Networks, proxies: Networks) -> Metrics {
        let mut registry = Registry::default();
        let duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "http_server_request_duration_seconds",
            "Time to answer HTTP requests",
            duration.clone(),
        );
        let active = Gauge::default();
        registry.register(
            "http_server_active_requests",
            "HTTP requests being answered",
            active.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            duration,
            active,
            allow,
            proxies,
        }))
    }
}

/// The method as a label: the standard ones, else `_OTHER` (as
/// OpenTelemetry names it), so that made-up methods cannot grow the
/// metrics without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("_OTHER", |(_, label)| label)
}

/// The route template as a label. Each template is kept once for the
/// life of the process (there are as many as the router has routes), so a
/// request costs a lookup, not a copy.
fn route_label(route: Option<&MatchedPath>) -> &'static str {
    static ROUTES: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());
    let Some(route) = route.map(MatchedPath::as_str) else {
        return "unmatched";
    };
    let known = |routes: &[&'static str]| routes.iter().copied().find(|r| *r == route);
    if let Some(label) = known(&ROUTES.read().unwrap_or_else(|e| e.into_inner())) {
        return label;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    if let Some(label) = known(&routes) {
        return label;
    }
    let label: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.push(label);
    label
}

/// Middleware: answers the request in its `request` span (see
/// [`request_id::span`]), counts it, and writes its access line.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let span = request_id::span(&request);
    observe(metrics, request, next).instrument(span).await
}

async fn observe(metrics: Metrics, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = route_label(request.extensions().get::<MatchedPath>());
    // The access line names the method and path as sent; the metrics only
    // their labels. Neither is copied when access lines are off.
    let logged = tracing::enabled!(target: "access", tracing::Level::INFO).then(|| {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        (
            peer,
            request.method().clone(),
            // A `Uri` is shared, not copied, when cloned.
            request.uri().clone(),
            request.version(),
        )
    });
    let metrics = &metrics.0;
    metrics.active.inc();
    let response = next.run(request).await;
    metrics.active.dec();
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    metrics
        .duration
        .get_or_create(&Labels {
            method,
            route,
            status,
        })
        .observe(elapsed.as_secs_f64());
    if let Some((peer, method, uri, version)) = logged {
        // As a common log line: who (the peer: nginx's address behind
        // nginx, whose own log has the client), what, how it ended.
        // Tenths of a millisecond, in whole numbers: cheaper to write
        // than a float (every request pays for this line).
        let tenths = u64::try_from((elapsed.as_micros() + 50) / 100).unwrap_or(u64::MAX);
        let duration_ms = tenths as f64 / 10.0;
        let (whole, tenth) = (tenths / 10, tenths % 10);
        let peer = Peer(peer);
        let path = uri.path();
        tracing::info!(
            target: "access",
            status,
            duration_ms,
            "{peer} \"{method} {path} {version:?}\" {status} {whole}.{tenth}ms"
        );
    }
    response
}

/// The peer in an access line, `-` when unknown.
struct Peer(Option<SocketAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(peer) => peer.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// `GET /metrics`: the Prometheus text, to allowed direct clients only.
pub async fn handler(
    State(metrics): State<Metrics>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !metrics.0.may_read(peer.ip(), &headers) {
        return crate::pages::not_found().await;
    }
    let mut body = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut body, &metrics.0.registry) {
        tracing::error!("cannot encode the metrics: {err}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

impl Inner {
    /// Whether the client, as far as trusted parties say, is allowed.
    fn may_read(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        let proxied = ["x-forwarded-for", "x-real-ip", "forwarded"]
            .iter()
            .any(|name| headers.contains_key(*name));
        if !proxied {
            return self.allow.contains(peer);
        }
        self.proxies.contains(peer)
            && last_forwarded_for(headers).is_some_and(|client| self.allow.contains(client))
    }
}

/// The last address in `X-Forwarded-For`: the one the nearest proxy added.
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    value.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}
