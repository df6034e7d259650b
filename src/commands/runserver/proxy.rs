//! The dev proxy: holds the public address and forwards every request to
//! the current app process.
//!
//! The coordinator publishes an [`AppState`] on a watch channel; a request
//! reads it once, so a swap to a new child is atomic for every request.
//! Each backend counts the requests in flight through it (until their
//! response bodies end), so an old child is only told to stop once the
//! proxy has nothing left running on it. While no child is ready and a
//! build is under way, requests wait (bounded) instead of failing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::body::{empty, full, html, plain, BoxError, ProxyBody};
use super::errorpage;
use super::hosts::{AllowedHosts, Verdict};
use super::livereload::{self, Hub, Snippets};
use super::state::{AppState, Backend, Problem, Tracked};
use super::statics::Statics;
use crate::settings::RESERVED_PREFIX as RESERVED;
use crate::ui::Ui;

/// Everything a request needs to know, shared by all connections.
pub struct ProxyConfig {
    /// How long a request waits for an app while a build runs.
    pub hold: Duration,
    pub hub: Arc<Hub>,
    pub livereload: bool,
    pub snippets: Snippets,
    pub statics: Option<Statics>,
    pub hosts: AllowedHosts,
    pub ui: Ui,
}

/// Requests with larger heads are refused with 431.
const MAX_HEAD: usize = 32 * 1024;
/// A client gets this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until the task is dropped. Each connection is its
/// own task, so a slow client holds only itself up.
pub async fn serve(
    listener: TcpListener,
    state: watch::Receiver<AppState>,
    config: Arc<ProxyConfig>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                config.ui.verbose("Proxy", format!("accept failed: {err}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                let config = config.clone();
                async move { Ok::<_, Infallible>(handle(req, peer, state, &config).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: watch::Receiver<AppState>,
    config: &ProxyConfig,
) -> Response<ProxyBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let version = req.version();
    let response = route(req, peer, state, config).await;
    if !path.starts_with(RESERVED) {
        let bodiless = matches!(response.status().as_u16(), 101 | 204 | 304);
        let size = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| response.body().size_hint().exact())
            .or(bodiless.then_some(0));
        config.ui.access_log(
            method.as_str(),
            &path,
            version,
            response.status().as_u16(),
            size,
        );
    }
    response
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    mut state: watch::Receiver<AppState>,
    config: &ProxyConfig,
) -> Response<ProxyBody> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host.as_deref().map(|h| config.hosts.check(h)) {
        Some(Verdict::Allowed) => {}
        Some(Verdict::NotAllowed(name)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!(
                    "manage: blocked request: `{name}` is not an allowed host for the development server.\n\
                     To allow it, run `manage runserver --allowed-host {name}` or add it to \
                     `allowed-hosts` in [package.metadata.manage].\n"
                ),
            );
        }
        Some(Verdict::Invalid) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "manage: bad request: the Host header is not a valid host[:port]\n",
            )
        }
        None => {
            return plain(
                StatusCode::BAD_REQUEST,
                "manage: bad request: no Host header\n",
            )
        }
    }

    let path = req.uri().path();
    if let Some(endpoint) = path.strip_prefix(RESERVED) {
        return reserved(endpoint, &state, config);
    }
    if let Some(statics) = &config.statics {
        if statics.matches(path) {
            return statics.serve(req.method(), path, req.headers()).await;
        }
    }
    let wants_html = accepts_html(req.headers());
    // Read before picking: a swap in between makes the page reload once
    // more than needed, never once less.
    let generation = config.hub.generation();
    match pick(&mut state, config.hold).await {
        Ok((backend, banner)) => forward(req, peer, backend, banner, generation, config).await,
        Err(state) => unavailable(&state, config, wants_html),
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn reserved(
    endpoint: &str,
    state: &watch::Receiver<AppState>,
    config: &ProxyConfig,
) -> Response<ProxyBody> {
    match endpoint {
        "events" => config.hub.events_response(),
        "livereload.js" => match crate::render::embedded_text("runserver/livereload.js") {
            Ok(js) => {
                let mut r = plain(StatusCode::OK, js);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/javascript; charset=utf-8"),
                );
                r
            }
            Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
        },
        "errors" => {
            let state = state.borrow().clone();
            let (title, fragment) = match &state.problem {
                Some(problem) => errorpage::describe(problem, config.hold),
                None => (
                    "No errors",
                    errorpage::not_running(
                        "The last build succeeded: there are no errors to show.",
                    ),
                ),
            };
            html(
                StatusCode::OK,
                errorpage::page(title, &fragment, config.livereload),
            )
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The backend to use, and whether the page should carry the "last good
/// build" banner; waits while a build or start is under way.
async fn pick(
    state: &mut watch::Receiver<AppState>,
    hold: Duration,
) -> Result<(Arc<Backend>, bool), AppState> {
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        {
            let current = state.borrow_and_update();
            if let Some(backend) = &current.backend {
                let banner = matches!(
                    current.problem,
                    Some(Problem::BuildFailed(_) | Problem::Crashed(_) | Problem::NotReady(_))
                );
                return Ok((backend.clone(), banner));
            }
            if !current.busy {
                return Err(current.clone());
            }
        }
        if tokio::time::timeout_at(deadline, state.changed())
            .await
            .map_or(true, |r| r.is_err())
        {
            let mut current = state.borrow().clone();
            if current.problem.is_none() {
                current.problem = Some(Problem::Building);
            }
            return Err(current);
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in Connection are hop-by-hop too.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(listed.iter()) {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

async fn forward(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    backend: Arc<Backend>,
    banner: bool,
    generation: u64,
    config: &ProxyConfig,
) -> Response<ProxyBody> {
    let inflight = backend.enter();
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    let mut target = hyper::http::uri::Parts::default();
    target.scheme = Some(hyper::http::uri::Scheme::HTTP);
    target.authority = Some(backend.authority.clone());
    target.path_and_query = Some(path);
    let Ok(uri) = Uri::from_parts(target) else {
        return plain(StatusCode::BAD_REQUEST, "manage: bad request target\n");
    };
    let is_head = req.method() == Method::HEAD;
    let upgrade = is_upgrade(req.headers()).then(|| {
        let protocol = req.headers().get(header::UPGRADE).cloned();
        (hyper::upgrade::on(&mut req), protocol)
    });
    let original_host = req.headers().get(header::HOST).cloned();
    *req.uri_mut() = uri;
    *req.version_mut() = hyper::Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    if let Some((_, Some(protocol))) = &upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let client_ip = peer.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = original_host {
        headers.insert("x-forwarded-host", host);
    }

    let mut response = match backend.client.request(req).await {
        Ok(response) => response,
        Err(err) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                &format!("manage: the app did not answer this request: {err}\n"),
            )
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some((client_side, _)) = upgrade {
            let app_side = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let _inflight = inflight;
                if let (Ok(client), Ok(app)) = (client_side.await, app_side.await) {
                    let mut client = TokioIo::new(client);
                    let mut app = TokioIo::new(app);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut app).await;
                }
            });
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, empty());
        }
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let snippet = config
        .snippets
        .for_page(banner, generation)
        .filter(|_| !is_head && livereload::injectable(&parts));
    if let Some(snippet) = snippet {
        // Bounded by livereload's size limit through Content-Length.
        return match body.collect().await {
            Ok(collected) => {
                drop(inflight);
                let html = livereload::inject(&collected.to_bytes(), &snippet);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
                // The page differs from what the app sent.
                parts.headers.remove(header::ETAG);
                parts.headers.remove(header::LAST_MODIFIED);
                Response::from_parts(parts, full(html))
            }
            Err(err) => plain(
                StatusCode::BAD_GATEWAY,
                &format!("manage: the app's response broke off: {err}\n"),
            ),
        };
    }
    let body = Tracked::new(body, inflight);
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

/// No app to forward to: the error page for a browser, a short text for
/// anything else. 502 when the app died, 503 otherwise.
fn unavailable(state: &AppState, config: &ProxyConfig, wants_html: bool) -> Response<ProxyBody> {
    let problem = state.problem.clone().unwrap_or(Problem::NotReady(Arc::new(
        "no build has been started".to_owned(),
    )));
    let status = match problem {
        Problem::Crashed(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    if wants_html {
        let (title, fragment) = errorpage::describe(&problem, config.hold);
        return html(status, errorpage::page(title, &fragment, config.livereload));
    }
    plain(status, &errorpage::text(&problem, config.hold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
