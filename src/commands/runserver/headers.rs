//! What the proxy checks and changes in request headers: the head's size,
//! the Host (and an absolute-form target's authority), transfer codings,
//! hop-by-hop headers, and the forwarding headers the app reads.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Request;

/// Request heads larger than this get 431 (request line and headers, as
/// they came on the wire).
pub const MAX_HEAD: usize = 32 * 1024;

/// The request head's size in bytes, as it was sent.
pub fn head_size<B>(req: &Request<B>) -> usize {
    // "METHOD TARGET HTTP/1.1\r\n", each "name: value\r\n", and "\r\n".
    let uri = req.uri();
    // The target as sent, measured without formatting it on every request.
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => scheme.len() + 3 + authority.as_str().len(),
        (None, Some(authority)) => authority.as_str().len(),
        _ => 0,
    } + uri.path_and_query().map_or(0, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + 1 + 8 + 2;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + fields + 2
}

/// The host a request is for: an absolute-form target's authority, which
/// RFC 9112 §3.2.2 puts before Host, else the one Host header. `Err` for a
/// request that names its host twice or not as text.
pub fn request_host<B>(req: &Request<B>) -> Result<Option<String>, &'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("the request has more than one Host header");
    }
    let host = match host.map(|h| h.to_str()) {
        Some(Ok(h)) => Some(h.to_owned()),
        Some(Err(_)) => return Err("the Host header is not text"),
        None => None,
    };
    match req.uri().authority() {
        Some(authority) => Ok(Some(authority.as_str().to_owned())),
        None => Ok(host),
    }
}

/// Whether the request's body uses a transfer coding the proxy cannot pass
/// on (anything but `chunked`): RFC 9112 §6.1 asks for 501.
pub fn unknown_transfer_coding(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .any(|coding| !coding.trim().eq_ignore_ascii_case("chunked"))
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

/// Removes hop-by-hop headers, also those that `Connection` names, except
/// Host: a client cannot make the app lose it by listing it there.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| *name != header::HOST)
        .collect();
    for name in HOP_BY_HOP.iter().chain(listed.iter()) {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

pub fn is_upgrade(headers: &HeaderMap) -> bool {
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

/// Tells the app who asked and for which host, the way it would learn it
/// behind nginx: `X-Forwarded-For` (appended), `X-Forwarded-Proto`,
/// `X-Forwarded-Host`, and one `Forwarded` element (RFC 7239) in place of
/// whatever the client sent, so a client cannot choose the host the app
/// believes in through either header.
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, host: &str) {
    let client_ip = client.to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.remove("x-forwarded-host");
    headers.remove(header::FORWARDED);
    if let Ok(v) = HeaderValue::from_str(host) {
        headers.insert("x-forwarded-host", v);
    }
    let node = match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    // `host` passed the strict Host parse: no quote or backslash in it.
    if let Ok(v) = HeaderValue::from_str(&format!("for={node};host=\"{host}\";proto=http")) {
        headers.insert(header::FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_but_never_host() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret, Host"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert!(headers.contains_key(header::ACCEPT));
        assert!(headers.contains_key(header::HOST));
    }

    #[test]
    fn the_client_cannot_choose_the_forwarded_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::FORWARDED, HeaderValue::from_static("host=evil.com"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("evil.com"));
        add_forwarding(&mut headers, "::1".parse().unwrap(), "localhost:8000");
        assert_eq!(
            headers[header::FORWARDED],
            "for=\"[::1]\";host=\"localhost:8000\";proto=http"
        );
        assert_eq!(headers["x-forwarded-host"], "localhost:8000");
        assert_eq!(headers.get_all(header::FORWARDED).iter().count(), 1);
    }

    #[test]
    fn only_chunked_is_a_known_transfer_coding() {
        let mut headers = HeaderMap::new();
        assert!(!unknown_transfer_coding(&headers));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(!unknown_transfer_coding(&headers));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert!(unknown_transfer_coding(&headers));
    }

    #[test]
    fn head_size_counts_the_request_as_sent() {
        let req = Request::builder()
            .uri("http://localhost:8000/a?b=1")
            .header(header::HOST, "localhost:8000")
            .body(())
            .unwrap();
        let wire = "GET http://localhost:8000/a?b=1 HTTP/1.1\r\nhost: localhost:8000\r\n\r\n";
        assert_eq!(head_size(&req), wire.len());
        let req = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(head_size(&req), "GET /x HTTP/1.1\r\n\r\n".len());
    }

    #[test]
    fn two_hosts_or_an_absolute_target_decide_the_host() {
        let req = Request::builder()
            .uri("/")
            .header(header::HOST, "localhost")
            .header(header::HOST, "evil.com")
            .body(())
            .unwrap();
        assert!(request_host(&req).is_err());
        let req = Request::builder()
            .uri("http://evil.com/")
            .header(header::HOST, "localhost")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).unwrap().as_deref(), Some("evil.com"));
    }
}
