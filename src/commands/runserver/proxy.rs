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
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::build::Diagnostic;
use super::child::Exit;
use crate::ui::Ui;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// One app process as the proxy sees it.
pub struct Backend {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Incoming>,
    inflight: AtomicUsize,
    idle: Notify,
}

impl Backend {
    pub fn new(addr: SocketAddr) -> Arc<Backend> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(15))
            .build(connector);
        Arc::new(Backend {
            addr,
            client,
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// Waits until no request is in flight through this backend, or
    /// `timeout` passes (a long-lived stream must not hold a stop forever).
    pub async fn drained(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.idle.notified();
                if self.inflight.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    fn enter(self: &Arc<Self>) -> Inflight {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        Inflight(self.clone())
    }
}

/// Counts one request in flight; dropped when its response body ends.
struct Inflight(Arc<Backend>);

impl Drop for Inflight {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Why there is no app to forward to.
#[derive(Clone)]
pub enum Problem {
    BuildFailed {
        diagnostics: Arc<Vec<Diagnostic>>,
        cargo_errors: Arc<Vec<String>>,
    },
    Crashed(Arc<Exit>),
    NotReady(Arc<String>),
}

/// What the coordinator publishes to the proxy.
#[derive(Clone, Default)]
pub struct AppState {
    /// The child that gets traffic.
    pub backend: Option<Arc<Backend>>,
    /// A build (or a new child's start) is under way.
    pub busy: bool,
    /// The newest build's problem, if any (the old backend may still serve).
    pub problem: Option<Problem>,
}

pub struct ProxyConfig {
    /// How long a request waits for an app while a build runs.
    pub hold: Duration,
}

/// Accepts connections until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    state: watch::Receiver<AppState>,
    config: Arc<ProxyConfig>,
    ui: Ui,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                ui.verbose("Proxy", format!("accept failed: {err}"));
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
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    mut state: watch::Receiver<AppState>,
    config: &ProxyConfig,
) -> Response<ProxyBody> {
    match pick(&mut state, config.hold).await {
        Ok(backend) => forward(req, peer, backend).await,
        Err(state) => unavailable(&state, config.hold),
    }
}

/// The backend to use, waiting while a build or start is under way.
async fn pick(
    state: &mut watch::Receiver<AppState>,
    hold: Duration,
) -> Result<Arc<Backend>, AppState> {
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        {
            let current = state.borrow_and_update();
            if let Some(backend) = &current.backend {
                return Ok(backend.clone());
            }
            if !current.busy {
                return Err(current.clone());
            }
        }
        if tokio::time::timeout_at(deadline, state.changed())
            .await
            .map_or(true, |r| r.is_err())
        {
            return Err(state.borrow().clone());
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

async fn forward(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    backend: Arc<Backend>,
) -> Response<ProxyBody> {
    let inflight = backend.enter();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri: Uri = match format!("http://{}{}", backend.addr, path).parse() {
        Ok(uri) => uri,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "manage: bad request target\n"),
    };
    let original_host = req.headers().get(header::HOST).cloned();
    *req.uri_mut() = uri;
    *req.version_mut() = hyper::Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
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

    match backend.client.request(req).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let body = Tracked {
                inner: body,
                _inflight: inflight,
            };
            Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
        }
        Err(err) => plain(
            StatusCode::BAD_GATEWAY,
            &format!("manage: the app did not answer this request: {err}\n"),
        ),
    }
}

/// A response body that keeps its request counted until it ends.
struct Tracked {
    inner: Incoming,
    _inflight: Inflight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pub fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 503 with a short explanation of why there is no app.
fn unavailable(state: &AppState, hold: Duration) -> Response<ProxyBody> {
    let text = match &state.problem {
        Some(Problem::BuildFailed {
            diagnostics,
            cargo_errors,
        }) => {
            let mut text = String::from(
                "manage: the build failed, so there is no app to serve this request.\n\
                 Fix the errors below and save; the page recovers by itself.\n\n",
            );
            for d in diagnostics.iter().filter(|d| d.is_error) {
                text.push_str(&console::strip_ansi_codes(&d.rendered));
                text.push('\n');
            }
            for e in cargo_errors.iter() {
                text.push_str(e);
                text.push('\n');
            }
            text
        }
        Some(Problem::Crashed(exit)) => format!(
            "manage: the app exited ({}); save a change to rebuild and restart it.\n\n{}\n",
            exit.describe(),
            exit.stderr_tail.join("\n")
        ),
        Some(Problem::NotReady(why)) => format!("manage: the app is not running: {why}\n"),
        None if state.busy => format!(
            "manage: the app is still building; this request waited {} s.\n",
            hold.as_secs()
        ),
        None => "manage: the app is not running.\n".to_owned(),
    };
    plain(StatusCode::SERVICE_UNAVAILABLE, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backend_drains_when_its_last_request_ends() {
        let backend = Backend::new("127.0.0.1:9".parse().unwrap());
        let a = backend.enter();
        let b = backend.enter();
        let waiter = {
            let backend = backend.clone();
            tokio::spawn(async move {
                let start = std::time::Instant::now();
                backend.drained(Duration::from_secs(10)).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(a);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "one request is still in flight");
        drop(b);
        let waited = waiter.await.unwrap();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn draining_is_bounded() {
        let backend = Backend::new("127.0.0.1:9".parse().unwrap());
        let _stuck = backend.enter();
        let start = std::time::Instant::now();
        backend.drained(Duration::from_millis(100)).await;
        assert!(start.elapsed() < Duration::from_secs(2));
    }

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
