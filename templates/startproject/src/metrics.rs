//! Prometheus metrics at `/metrics`, and the access line of each request.
//!
//! - `http_server_request_duration_seconds`: a histogram by method, route
//!   template (`/notes`, not `/notes?x=1`; `unmatched` for a 404) and
//!   status, as OpenTelemetry's HTTP conventions name it;
//! - `http_server_active_requests`: requests being answered now.
//!
//! `/metrics` answers only clients in `METRICS_ALLOW` (loopback by default;
//! add the Prometheus server's network) that came directly, not through a
//! proxy (no `X-Forwarded-For`, `X-Real-IP` or `Forwarded`): the public,
//! who reach the app through nginx or an ingress, get a 404.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::net::Networks;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    method: String,
    route: String,
    status: u16,
}

/// The metrics of this process, and who may read them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    active: Gauge,
    allow: Networks,
}

fn histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub fn new(allow: Networks) -> Metrics {
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
        Metrics {
            registry: Arc::new(registry),
            duration,
            active,
            allow,
        }
    }
}

/// Middleware: counts the request and writes its access line.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    metrics.active.inc();
    let response = next.run(request).await;
    metrics.active.dec();
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    metrics
        .duration
        .get_or_create(&Labels {
            method: method.to_string(),
            route,
            status,
        })
        .observe(elapsed.as_secs_f64());
    let duration_ms = (elapsed.as_secs_f64() * 10_000.0).round() / 10.0;
    tracing::info!(
        target: "access",
        status,
        duration_ms,
        "{method} {path} {status} {duration_ms}ms"
    );
    response
}

/// `GET /metrics`: the Prometheus text, to allowed direct clients only.
pub async fn handler(
    State(metrics): State<Metrics>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !metrics.allow.contains(peer.ip()) || forwarded(&headers) {
        return crate::pages::not_found().await;
    }
    let mut body = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut body, &metrics.registry) {
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

/// Whether a proxy passed the request on.
fn forwarded(headers: &HeaderMap) -> bool {
    ["x-forwarded-for", "x-real-ip", "forwarded"]
        .iter()
        .any(|name| headers.contains_key(*name))
}
