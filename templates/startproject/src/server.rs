//! Accepting connections, and stopping without failing a request.
//!
//! SIGTERM or Ctrl-C stops the server without failing a request, and it
//! exits 0. Under systemd, the socket outlives the process: a restart hands
//! the same socket to the next process, and nginx keeps idle connections to
//! this one that it may reuse at any moment. Closing one of those while
//! nginx sends a request on it fails that request (a POST is not retried),
//! so a socket-activated instance first goes *lame duck* for up to
//! `LAME_DUCK` (main.rs): it keeps accepting and answering, every response says
//! `Connection: close`, and it waits until nginx has closed the idle
//! connections itself (nginx's upstream `keepalive_timeout`, 2 s in the
//! config `manage deploy-config` writes, is shorter than `LAME_DUCK` (main.rs)). Then
//! it stops accepting (connections not yet accepted wait in the socket for
//! the next process), finishes in-flight requests for at most
//! `SHUTDOWN_GRACE`, and exits. In a container (HOST/PORT) nginx keeps
//! idle connections the same way, so the image sets `LAME_DUCK_SECS`;
//! started any other way (`manage runserver`, HOST/PORT by hand), nobody
//! waits on this process, so it skips the lame-duck period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tower::ServiceExt;

const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections until SIGTERM/SIGINT, then stops without failing a
/// request: lame duck for at most `lame_duck`, then in-flight requests.
pub async fn serve(listener: TcpListener, app: Router, lame_duck: Duration) {
    let draining = Arc::new(AtomicBool::new(false));
    // Connections from before the signal: hyper may close them once idle
    // (at the end only). Each task holds a sender; `recv` returns `None`
    // when every one of them has closed.
    let before = GracefulShutdown::new();
    let (before_tx, mut before_rx) = mpsc::channel::<()>(1);
    // Connections accepted while lame duck: never closed by us before their
    // one response, since their request may still be on its way.
    let (after_tx, mut after_rx) = mpsc::channel::<()>(1);

    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Some((stream, peer)) = accepted_or_wait(accepted).await {
                    let conn = before.watch(connection(stream, peer, &app, &draining));
                    spawn_connection(conn, peer, before_tx.clone());
                }
            }
            () = &mut shutdown => break,
        }
    }
    draining.store(true, Ordering::SeqCst);
    drop(before_tx);

    if !lame_duck.is_zero() {
        tracing::info!(
            "shutting down: answering with `Connection: close` until idle connections are gone"
        );
        let deadline = tokio::time::sleep(lame_duck);
        let mut deadline = std::pin::pin!(deadline);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Some((stream, peer)) = accepted_or_wait(accepted).await {
                        spawn_connection(connection(stream, peer, &app, &draining), peer, after_tx.clone());
                    }
                }
                None = before_rx.recv() => break,
                () = &mut deadline => break,
            }
        }
    }
    // Connections that are not accepted yet stay in the socket: systemd
    // hands it to the next process.
    drop(listener);
    drop(after_tx);
    tracing::info!("shutting down: finishing in-flight requests");
    let finished = async {
        tokio::join!(before.shutdown(), async {
            while after_rx.recv().await.is_some() {}
        });
    };
    tokio::select! {
        () = finished => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
    }
}

/// An accepted connection, or `None` after a pause when accept failed (out
/// of file descriptors and the like: wait, don't spin).
async fn accepted_or_wait(
    accepted: std::io::Result<(TcpStream, SocketAddr)>,
) -> Option<(TcpStream, SocketAddr)> {
    match accepted {
        Ok(accepted) => Some(accepted),
        Err(err) => {
            tracing::warn!("accept failed: {err}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// HTTP/1 on one connection, answered by the router; responses say
/// `Connection: close` once `draining` is set.
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: &Router,
    draining: &Arc<AtomicBool>,
) -> impl GracefulConnection<Error = hyper::Error> + Send + 'static {
    let draining = draining.clone();
    let app = app.clone();
    let service = service_fn(move |mut request: Request<Incoming>| {
        // What `ConnectInfo` extracts: the request id's and /metrics'
        // trust decisions need the peer.
        request.extensions_mut().insert(ConnectInfo(peer));
        let draining = draining.clone();
        let response = app.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let mut response = response.await?;
            if draining.load(Ordering::SeqCst) {
                // hyper closes the connection after this response, so the
                // peer never sends another request on a connection about to
                // go away.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    http1::Builder::new().serve_connection(TokioIo::new(stream), service)
}

fn spawn_connection(
    conn: impl Future<Output = hyper::Result<()>> + Send + 'static,
    peer: SocketAddr,
    guard: mpsc::Sender<()>,
) {
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(err) = conn.await {
            tracing::debug!("connection from {peer}: {err}");
        }
    });
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("cannot listen for SIGTERM");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
