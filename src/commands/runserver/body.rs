//! The body type every response of the dev server has, and the small
//! responses manage writes itself.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt as _, Empty, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// No body at all.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A short plain-text answer that no cache keeps.
pub fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(text.to_owned()));
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

/// A page manage wrote itself (error pages), never cached.
pub fn html(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = plain(status, "");
    *response.body_mut() = full(text);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
