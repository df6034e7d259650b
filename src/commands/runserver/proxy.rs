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
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt as _, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::build::Diagnostic;
use super::child::Exit;
use super::errorpage;
use super::livereload::{self, Hub};
use super::statics::Statics;
use crate::ui::Ui;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// One app process as the proxy sees it.
pub struct Backend {
    /// The app's loopback address, as a URI authority made once.
    authority: hyper::http::uri::Authority,
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
            authority: addr
                .to_string()
                .parse()
                .expect("a socket address is a valid authority"),
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
    /// Only for answers: a request gave up waiting for a build.
    Building,
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

/// The Host check against DNS rebinding (as Django's ALLOWED_HOSTS and
/// Vite's `server.allowedHosts`).
pub struct AllowedHosts {
    /// Lowercase names without port; `.example.com` allows subdomains; `*` all.
    pub extra: Vec<String>,
    /// The address manage is bound to.
    pub bound: IpAddr,
}

impl AllowedHosts {
    pub fn allows(&self, host_header: &str) -> bool {
        let host = host_without_port(host_header).to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip.is_loopback() || (ip == self.bound && !ip.is_unspecified()) {
                return true;
            }
        }
        self.extra.iter().any(|allowed| {
            allowed == "*"
                || allowed == host
                || (allowed.starts_with('.')
                    && (host.ends_with(allowed.as_str()) || host == &allowed[1..]))
        })
    }
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 2]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Requests with larger heads are refused with 431.
const MAX_HEAD: usize = 32 * 1024;
/// A client gets this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// HTML bodies up to this size get the live-reload script.
const MAX_INJECT: u64 = 8 * 1024 * 1024;

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

/// manage's own endpoints live under this prefix.
const RESERVED: &str = "/__manage/";

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
    match host {
        Some(host) if config.hosts.allows(&host) => {}
        Some(host) => {
            let name = host_without_port(&host).to_owned();
            return plain(
                StatusCode::BAD_REQUEST,
                &format!(
                    "manage: blocked request: `{name}` is not an allowed host for the development server.\n\
                     To allow it, run `manage runserver --allowed-host {name}` or add it to \
                     `allowed-hosts` in [package.metadata.manage].\n"
                ),
            );
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
                Some(problem) => describe(problem, config.hold),
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

fn describe(problem: &Problem, hold: Duration) -> (&'static str, String) {
    match problem {
        Problem::BuildFailed {
            diagnostics,
            cargo_errors,
        } => (
            "Build failed",
            errorpage::build_failed(diagnostics, cargo_errors),
        ),
        Problem::Crashed(exit) => ("The app exited", errorpage::crashed(exit)),
        Problem::NotReady(why) => ("The app is not running", errorpage::not_running(why)),
        Problem::Building => ("Building", errorpage::building(hold.as_secs())),
    }
}

fn html(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = plain(status, "");
    *response.body_mut() = Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
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
                    Some(Problem::BuildFailed { .. } | Problem::Crashed(_) | Problem::NotReady(_))
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
            return Response::from_parts(
                parts,
                Empty::new().map_err(|never| match never {}).boxed(),
            );
        }
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let snippet = if banner {
        Some(config.snippets.banner.as_str())
    } else {
        config.snippets.normal.as_deref()
    };
    if let Some(snippet) = snippet.filter(|_| !is_head && injectable(&parts)) {
        // Bounded by MAX_INJECT through Content-Length.
        return match body.collect().await {
            Ok(collected) => {
                drop(inflight);
                // The page tells its script which build it came from, so a
                // swap before the script connects still reloads it.
                let snippet = snippet.replace(GENERATION_MARK, &generation.to_string());
                let html = livereload::inject(&collected.to_bytes(), &snippet);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
                // The page differs from what the app sent.
                parts.headers.remove(header::ETAG);
                parts.headers.remove(header::LAST_MODIFIED);
                Response::from_parts(
                    parts,
                    Full::new(Bytes::from(html))
                        .map_err(|never| match never {})
                        .boxed(),
                )
            }
            Err(err) => plain(
                StatusCode::BAD_GATEWAY,
                &format!("manage: the app's response broke off: {err}\n"),
            ),
        };
    }
    let body = Tracked {
        inner: body,
        _inflight: inflight,
    };
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

/// Whether a response is a complete, unencoded HTML page we may rewrite.
fn injectable(parts: &hyper::http::response::Parts) -> bool {
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

/// What goes into HTML pages, rendered once at start-up: nothing or the
/// live-reload script normally, the banner (and script) while the newest
/// build is broken.
/// Stands for the serving build's generation in the rendered snippets.
const GENERATION_MARK: &str = "__MANAGE_GENERATION__";

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
        let (title, fragment) = describe(&problem, config.hold);
        return html(status, errorpage::page(title, &fragment, config.livereload));
    }
    let text = match &problem {
        Problem::BuildFailed {
            diagnostics,
            cargo_errors,
        } => {
            let mut text = String::from(
                "manage: the build failed, so there is no app to serve this request.\n\
                 Fix the errors below and save; service resumes by itself.\n\n",
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
        Problem::Crashed(exit) => format!(
            "manage: the app exited ({}); save a change to rebuild and restart it.\n\n{}\n",
            exit.describe(),
            console::strip_ansi_codes(&exit.stderr_tail.join("\n"))
        ),
        Problem::NotReady(why) => format!("manage: the app is not running: {why}\n"),
        Problem::Building => format!(
            "manage: the app is still building; this request waited {} s.\n",
            config.hold.as_secs()
        ),
    };
    plain(status, &text)
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
    fn host_check() {
        let hosts = AllowedHosts {
            extra: vec!["myapp.test".into(), ".example.com".into()],
            bound: "192.168.1.5".parse().unwrap(),
        };
        for ok in [
            "localhost",
            "localhost:8000",
            "LOCALHOST",
            "app.localhost:8000",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]:8000",
            "[::1]",
            "192.168.1.5:8000",
            "myapp.test",
            "myapp.test:80",
            "example.com",
            "a.example.com",
        ] {
            assert!(hosts.allows(ok), "{ok} refused");
        }
        for bad in [
            "evil.com",
            "evil.com:8000",
            "localhost.evil.com",
            "10.0.0.1",
            "0.0.0.0:8000",
            "myapp.test.evil",
            "badexample.com",
            "",
        ] {
            assert!(!hosts.allows(bad), "{bad} allowed");
        }
        let any = AllowedHosts {
            extra: vec!["*".into()],
            bound: "0.0.0.0".parse().unwrap(),
        };
        assert!(any.allows("anything.example"));
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
