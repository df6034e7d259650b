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
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::body::{empty, html, plain, BoxError, ProxyBody};
use super::config::HOLD;
use super::errorpage;
use super::headers::{self, MAX_HEAD};
use super::hosts::Verdict;
use super::inject::{self, Injected};
use super::livereload::Banner;
use super::stall::{send_timeout, WriteTimeout};
use super::state::{AppState, Backend, Problem, Tracked};
use crate::settings::RESERVED_PREFIX as RESERVED;
use crate::ui::Ui;

mod snapshot;

pub use self::snapshot::{ProxyConfig, Snapshots};

/// hyper's read buffer: room for a head a little over [`MAX_HEAD`], so
/// the exact limit is manage's to apply (hyper's own is approximate).
const READ_BUFFER: usize = MAX_HEAD + 16 * 1024;
/// A client gets this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until the task is dropped. Each connection is its
/// own task, so a slow client holds only itself up. A request reads the
/// latest settings when it arrives; until the first, it waits as it
/// would for a build.
pub async fn serve(
    listener: TcpListener,
    state: watch::Receiver<AppState>,
    snapshots: Snapshots,
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
        let snapshots = snapshots.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                let mut snapshots = snapshots.clone();
                async move {
                    let response = match snapshot::current(&mut snapshots, HOLD).await {
                        Some(config) => handle(req, peer, state, &config).await,
                        None => plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "manage: still reading the project (cargo metadata); try again\n",
                        ),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(READ_BUFFER)
                .serve_connection(
                    TokioIo::new(WriteTimeout::new(stream, send_timeout())),
                    service,
                )
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
    if headers::head_size(&req) > MAX_HEAD {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("manage: the request head is larger than {MAX_HEAD} bytes\n"),
        );
    }
    let host = match headers::request_host(&req) {
        Ok(host) => host,
        Err(why) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("manage: bad request: {why}\n"),
            )
        }
    };
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
    let host = host.unwrap_or_default();
    if headers::unknown_transfer_coding(req.headers()) {
        return plain(
            StatusCode::NOT_IMPLEMENTED,
            "manage: the request uses a transfer coding other than chunked\n",
        );
    }

    let path = req.uri().path();
    if let Some(endpoint) = path.strip_prefix(RESERVED) {
        if let (Some(editor), "open") = (&config.editor, endpoint) {
            let query = req.uri().query().unwrap_or("");
            let (status, text) = editor.open(query, req.headers(), &host);
            return plain(status, &text);
        }
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
        Ok((backend, last_good)) => {
            let banner = if last_good {
                Banner::LastGoodBuild
            } else if !config.pending_migrations().is_empty() {
                Banner::Migrations
            } else {
                Banner::None
            };
            let page = Page {
                banner,
                generation,
                wants_html,
            };
            forward(req, peer, &host, backend, page, config).await
        }
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
            let pending = config.pending_migrations();
            let (title, fragment) = match &state.problem {
                Some(problem) => {
                    errorpage::describe(problem, config.hold, config.editor.as_deref())
                }
                None if !pending.is_empty() => {
                    ("Unapplied migrations", errorpage::migrations(&pending))
                }
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

/// What a forwarded page needs to know for injection and errors.
struct Page {
    /// The banner the page carries, if any.
    banner: Banner,
    /// The build generation the page will come from.
    generation: u64,
    wants_html: bool,
}

async fn forward(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    host: &str,
    backend: Arc<Backend>,
    page: Page,
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
    let upgrade = headers::is_upgrade(req.headers()).then(|| {
        let protocol = req.headers().get(header::UPGRADE).cloned();
        (hyper::upgrade::on(&mut req), protocol)
    });
    *req.uri_mut() = uri;
    *req.version_mut() = hyper::Version::HTTP_11;
    let headers = req.headers_mut();
    headers::strip_hop_by_hop(headers);
    if let Some((_, Some(protocol))) = &upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // The host the request was for (an absolute-form target's, RFC 9112
    // §3.2.2), not whatever else the client put in Host.
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert(header::HOST, value);
    }
    headers::add_forwarding(headers, peer.ip(), host);

    let Some(client) = backend.client() else {
        // Its stop began after this request chose it.
        return plain(
            StatusCode::BAD_GATEWAY,
            "manage: the app stopped before this request reached it\n",
        );
    };
    let answer = tokio::time::timeout(config.response_timeout, client.request(req));
    let mut response = match answer.await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                &format!("manage: the app did not answer this request: {err}\n"),
            )
        }
        Err(_) => return timed_out(config, page.wants_html),
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
    headers::strip_hop_by_hop(&mut parts.headers);
    let body = Tracked::new(body, inflight);
    let snippet = config
        .snippets
        .for_page(page.banner, page.generation)
        .filter(|_| inject::injectable(&parts));
    if let Some(snippet) = snippet {
        inject::adjust_headers(&mut parts.headers, snippet.len());
        if !is_head {
            let body = Injected::new(body, snippet);
            return Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed());
        }
    }
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

/// The app took longer than `response_timeout` to start answering (it is
/// stopped in a debugger, or stuck): 504, with a page for a browser.
fn timed_out(config: &ProxyConfig, wants_html: bool) -> Response<ProxyBody> {
    let why = format!(
        "The app did not start answering this request within {} s. Is it stopped \
         (in a debugger, or with SIGSTOP) or stuck? `--response-timeout` sets the limit.",
        config.response_timeout.as_secs()
    );
    if wants_html {
        let fragment = errorpage::not_running(&why);
        return html(
            StatusCode::GATEWAY_TIMEOUT,
            errorpage::page("The app did not answer", &fragment, config.livereload),
        );
    }
    plain(StatusCode::GATEWAY_TIMEOUT, &format!("manage: {why}\n"))
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
        let (title, fragment) =
            errorpage::describe(&problem, config.hold, config.editor.as_deref());
        return html(status, errorpage::page(title, &fragment, config.livereload));
    }
    plain(status, &errorpage::text(&problem, config.hold))
}
