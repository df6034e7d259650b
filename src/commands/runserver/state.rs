//! The contract between the coordinator and the proxy: which app gets
//! traffic ([`AppState`], published on a watch channel), why there is none
//! ([`Problem`]), and how many requests are still running on an app
//! ([`Backend`]), so an old app is only stopped once it is drained.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use super::addr::{AppAddr, Connector};
use super::build::Failure;
use super::child::Exit;

/// One app process as the proxy sees it.
pub struct Backend {
    /// Where the app takes connections.
    pub addr: AppAddr,
    /// The app's address, as a URI authority made once.
    pub authority: hyper::http::uri::Authority,
    /// Its connection pool; none once its stop has begun.
    client: Mutex<Option<AppClient>>,
    inflight: AtomicUsize,
    idle: Notify,
}

pub type AppClient = Client<Connector, Incoming>;

impl Backend {
    pub fn new(addr: &AppAddr) -> Arc<Backend> {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(15))
            .build(Connector::new(addr.clone()));
        Arc::new(Backend {
            addr: addr.clone(),
            authority: addr.authority(),
            client: Mutex::new(Some(client)),
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// A handle on its connection pool, unless its stop has begun.
    pub fn client(&self) -> Option<AppClient> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Its stop begins: the pool goes, so its idle keep-alive connections
    /// close now and none is opened or reused again. A framework that
    /// waits for its open connections before it exits (actix-web, Rocket)
    /// then stops at once instead of after the grace period. Connections
    /// still answering a request close as their responses end.
    pub fn close(&self) {
        drop(self.client.lock().unwrap_or_else(|e| e.into_inner()).take());
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

    /// Counts one request until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Inflight {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        Inflight(self.clone())
    }
}

/// Counts one request in flight; dropped when its response body ends.
pub struct Inflight(Arc<Backend>);

impl Drop for Inflight {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted until it ends.
pub struct Tracked {
    inner: Incoming,
    _inflight: Inflight,
}

impl Tracked {
    pub fn new(inner: Incoming, inflight: Inflight) -> Tracked {
        Tracked {
            inner,
            _inflight: inflight,
        }
    }
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

/// Why there is no app to forward to.
#[derive(Clone)]
pub enum Problem {
    BuildFailed(Arc<Failure>),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backend_drains_when_its_last_request_ends() {
        let backend = Backend::new(&AppAddr::Tcp("127.0.0.1:9".parse().unwrap()));
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
        let backend = Backend::new(&AppAddr::Tcp("127.0.0.1:9".parse().unwrap()));
        let _stuck = backend.enter();
        let start = std::time::Instant::now();
        backend.drained(Duration::from_millis(100)).await;
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
