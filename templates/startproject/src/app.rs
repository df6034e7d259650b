//! The application: routes and the middleware every request passes.
//!
//! From the outside in: the request id (kept from a trusted proxy, else
//! new, echoed in the response), the `request` span every log line of the
//! request carries with metrics and the access line (one middleware:
//! tower-http's `TraceLayer` would be a second one, and each costs every
//! request), panics turned into the 500 page, a 30 s timeout, a body
//! limit, and cross-site request protection for unsafe methods.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::csrf::TrustedOrigins;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::net::{self, Networks};
use crate::{csrf, metrics, pages, request_id, routes, static_files};

/// The longest a request may take before it is answered with 408.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body read (forms; raise it for uploads).
const MAX_BODY: usize = 64 * 1024;

/// What the environment says about who is trusted; read once at start, so
/// that a bad value stops the app with its name instead of failing later.
#[derive(Clone, Debug)]
pub struct Config {
    pub trusted_proxies: Networks,
    pub metrics_allow: Networks,
    pub trusted_origins: TrustedOrigins,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Ok(Config {
            trusted_proxies: Networks::from_env("TRUSTED_PROXIES", net::LOOPBACK)?,
            metrics_allow: Networks::from_env("METRICS_ALLOW", net::LOOPBACK)?,
            trusted_origins: TrustedOrigins::from_env()?,
        })
    }

    /// Loopback only, no other origins (the defaults), for tests.
    #[cfg(test)]
    pub fn local() -> Config {
        Config {
            trusted_proxies: Networks::parse(net::LOOPBACK).expect("valid"),
            metrics_allow: Networks::parse(net::LOOPBACK).expect("valid"),
            trusted_origins: TrustedOrigins::default(),
        }
    }
}

/// The whole application: the routes, static files, the 404 fallback and
/// the middleware.
pub fn router(db: Db, config: Config) -> Router {
    let metrics = Metrics::new(config.metrics_allow.clone(), config.trusted_proxies.clone());
    let routes = Router::new()
        .route("/", get(routes::welcome))
        .route("/healthz", get(routes::healthz))
        .route("/notes", get(routes::list_notes).post(routes::add_note))
        .with_state(db)
        .route(
            "/metrics",
            get(metrics::handler).with_state(metrics.clone()),
        );
    with_middleware(
        static_files::serve(routes, pages::not_found_page),
        config,
        metrics,
    )
}

/// `routes` with the 404 page for what matches no route, and every
/// request passing the middleware, outermost first.
pub fn with_middleware(routes: Router, config: Config, metrics: Metrics) -> Router {
    routes.fallback(pages::not_found).layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                config.trusted_proxies,
                request_id::accept_trusted,
            ))
            .layer(SetRequestIdLayer::x_request_id(request_id::NewId))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn_with_state(metrics, metrics::track))
            .layer(CatchPanicLayer::custom(pages::panicked))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                TIMEOUT,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn_with_state(
                config.trusted_origins,
                csrf::protect,
            )),
    )
}

#[cfg(test)]
mod tests;
