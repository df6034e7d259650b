//! Request ids: every request gets one, in `X-Request-ID`, echoed in the
//! response and carried by every log line written while it is answered.
//!
//! An id that arrives with the request is kept only from a trusted proxy
//! (`TRUSTED_PROXIES`, loopback by default: the nginx `manage deploy-config`
//! sets up on the same machine; list the web machine for three machines),
//! and only when it is a plain token (1 to 128 of `A-Z a-z 0-9 - _ . : /`);
//! anyone else's is replaced, so a client cannot forge ids in your logs.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::net::Networks;

pub const HEADER: &str = "x-request-id";

/// The span of a request: its id, method and path on every line logged
/// while it is answered.
pub fn span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = id,
        method = request.method().as_str(),
        path = request.uri().path(),
    )
}

/// Drops an incoming `X-Request-ID` that is not from a trusted proxy or is
/// not a plain token, so that [`NewId`] makes one.
pub async fn accept_trusted(
    State(trusted): State<Networks>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(value) = request.headers().get(HEADER) {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let from_trusted = peer.is_some_and(|ip| trusted.contains(ip));
        if !from_trusted || !plain(value) {
            request.headers_mut().remove(HEADER);
        }
    }
    next.run(request).await
}

fn plain(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(b))
}

/// Makes ids of 32 hex digits: unique within the process (a counter) and
/// unpredictable across processes (the hasher's random keys).
#[derive(Clone, Copy, Default)]
pub struct NewId;

impl MakeRequestId for NewId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static KEYS: std::sync::OnceLock<(RandomState, RandomState)> = std::sync::OnceLock::new();
        let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:016x}{:016x}", a.hash_one(n), b.hash_one(n));
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tokens_are_kept() {
        assert!(plain(&HeaderValue::from_static("abc-123_x.y:z/1")));
        assert!(!plain(&HeaderValue::from_static("")));
        assert!(!plain(&HeaderValue::from_static("a b")));
        assert!(!plain(&HeaderValue::from_static("a\"b")));
        assert!(!plain(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }

    #[test]
    fn new_ids_differ() {
        let req = axum::http::Request::new(());
        let one = NewId.make_request_id(&req).unwrap();
        let two = NewId.make_request_id(&req).unwrap();
        assert_ne!(one.header_value(), two.header_value());
        assert_eq!(one.header_value().len(), 32);
    }
}
