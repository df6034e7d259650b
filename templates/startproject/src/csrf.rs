//! Cross-site request protection for unsafe methods (POST, PUT, PATCH,
//! DELETE), the way Go 1.25's `CrossOriginProtection` does it, with no
//! token in forms:
//!
//! - `Sec-Fetch-Site` (every current browser sends it): `same-origin` or
//!   `none` (typed in the address bar, a bookmark) pass; `cross-site` and
//!   `same-site` are refused with 403 unless the `Origin` is trusted;
//! - otherwise `Origin` must name this site: its host the request's `Host`
//!   (and its port, when `Host` carries one: nginx passes the name alone);
//! - a request with neither header is not from a browser (curl, another
//!   service) and passes: cross-site forgery needs a victim's browser.
//!
//! `TRUSTED_ORIGINS` (`https://admin.example.com, https://example.org`)
//! lists other origins allowed to post here.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Origins allowed besides the site's own, as `scheme://host[:port]`;
/// cheap to clone (middleware state is cloned for every request).
#[derive(Clone, Debug, Default)]
pub struct TrustedOrigins(Arc<[String]>);

impl TrustedOrigins {
    /// `TRUSTED_ORIGINS`, or none. A value that is not an origin is an
    /// error naming it.
    pub fn from_env() -> Result<TrustedOrigins, String> {
        TrustedOrigins::parse(&std::env::var("TRUSTED_ORIGINS").unwrap_or_default())
    }

    pub fn parse(list: &str) -> Result<TrustedOrigins, String> {
        list.split([',', ' '])
            .filter(|item| !item.is_empty())
            .map(|item| {
                let origin = item.trim_end_matches('/').to_ascii_lowercase();
                match origin.split_once("://") {
                    Some(("http" | "https", host)) if !host.is_empty() && !host.contains('/') => {
                        Ok(origin)
                    }
                    _ => Err(format!(
                        "TRUSTED_ORIGINS: `{item}` is not an origin such as https://example.com"
                    )),
                }
            })
            .collect::<Result<Arc<[_]>, _>>()
            .map(TrustedOrigins)
    }

    fn contains(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.0.contains(&origin)
    }
}

/// The middleware: refuses a cross-origin unsafe request with 403.
pub async fn protect(
    State(trusted): State<TrustedOrigins>,
    request: Request,
    next: Next,
) -> Response {
    if is_safe(request.method()) || allowed(request.headers(), &trusted) {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = request.uri().path(),
        origin = ?request.headers().get(header::ORIGIN),
        "refused a cross-origin request"
    );
    (
        StatusCode::FORBIDDEN,
        "cross-origin request refused: this form may only be sent from this site\n",
    )
        .into_response()
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether an unsafe request with these headers comes from this site, or
/// from no browser at all.
pub fn allowed(headers: &HeaderMap, trusted: &TrustedOrigins) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin.is_some_and(|origin| trusted.contains(origin)) {
        return true;
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"same-origin" | b"none") => return true,
        Some(_) => return false,
        None => {}
    }
    let Some(origin) = origin else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    host.is_some_and(|host| same_host(origin, host))
}

/// `Origin: https://example.com:8443` against `Host: example.com` (nginx
/// passes the name without the port) or `Host: example.com:8443`.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // `null`, from a sandboxed frame or a file
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return false,
    };
    let (origin_name, origin_port) = split_port(authority);
    let (host_name, host_port) = split_port(host);
    if !origin_name.eq_ignore_ascii_case(host_name) {
        return false;
    }
    match host_port {
        None => true,
        Some(port) => origin_port.unwrap_or(default_port) == port,
    }
}

/// `name:port` or `[v6]:port` into its parts.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, port)) => (name, port.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn browsers_are_judged_by_sec_fetch_site_then_origin() {
        let none = TrustedOrigins::default();
        assert!(allowed(&headers(&[]), &none), "no browser");
        assert!(allowed(
            &headers(&[("sec-fetch-site", "same-origin")]),
            &none
        ));
        assert!(allowed(&headers(&[("sec-fetch-site", "none")]), &none));
        assert!(!allowed(
            &headers(&[("sec-fetch-site", "cross-site")]),
            &none
        ));
        assert!(!allowed(
            &headers(&[("sec-fetch-site", "same-site")]),
            &none
        ));
        let site = [("host", "example.com")];
        assert!(allowed(
            &headers(&[site[0], ("origin", "https://example.com")]),
            &none
        ));
        assert!(allowed(
            &headers(&[site[0], ("origin", "https://EXAMPLE.com:8443")]),
            &none
        ));
        assert!(!allowed(
            &headers(&[site[0], ("origin", "https://evil.example")]),
            &none
        ));
        assert!(!allowed(&headers(&[site[0], ("origin", "null")]), &none));
        let dev = [("host", "127.0.0.1:8000")];
        assert!(allowed(
            &headers(&[dev[0], ("origin", "http://127.0.0.1:8000")]),
            &none
        ));
        assert!(!allowed(
            &headers(&[dev[0], ("origin", "http://127.0.0.1:9000")]),
            &none
        ));
        assert!(!allowed(
            &headers(&[dev[0], ("origin", "http://127.0.0.1")]),
            &none
        ));
        let v6 = [("host", "[::1]:8000")];
        assert!(allowed(
            &headers(&[v6[0], ("origin", "http://[::1]:8000")]),
            &none
        ));
    }

    #[test]
    fn trusted_origins_pass_even_cross_site() {
        let trusted = TrustedOrigins::parse("https://admin.example.com/, http://x.test").unwrap();
        let cross = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://admin.example.com"),
        ];
        assert!(allowed(&headers(&cross), &trusted));
        assert!(TrustedOrigins::parse("admin.example.com").is_err());
        assert!(TrustedOrigins::parse("https://x.test/path").is_err());
    }
}
