//! The application in-process: requests go through the real router and
//! middleware (`oneshot`), with an in-memory SQLite database.

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use tower::ServiceExt;

use super::*;

const LOOPBACK_PEER: &str = "127.0.0.1:50000";
const PUBLIC_PEER: &str = "203.0.113.9:50000";

async fn app() -> Router {
    let db = Db::connect("sqlite::memory:").unwrap();
    db.migrate().await.unwrap();
    router(db, Config::local())
}

/// `request` from `peer`, as the server passes it (with `ConnectInfo`).
async fn send_from(app: &Router, peer: &str, mut request: Request<Body>) -> Response {
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.clone().oneshot(request).await.unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> Response {
    send_from(app, LOOPBACK_PEER, request).await
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, "localhost:8000")
        .body(Body::empty())
        .unwrap()
}

fn post_note() -> axum::http::request::Builder {
    Request::post("/notes")
        .header(header::HOST, "localhost:8000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
}

async fn text(response: Response) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_welcome_page_is_rendered_from_the_templates() {
    let app = app().await;
    let response = send(&app, get_request("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = text(response).await;
    assert!(
        page.contains(&format!(
            "<title>{} is running</title>",
            env!("CARGO_PKG_NAME")
        )),
        "{page}"
    );
    assert!(page.contains(r#"href="/static/css/site.css""#), "{page}");
}

#[tokio::test]
async fn unknown_paths_get_the_404_page_and_wrong_methods_405() {
    let app = app().await;
    let response = send(&app, get_request("/no-such-page")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(text(response).await.contains("Not found"));
    let delete = Request::delete("/").body(Body::empty()).unwrap();
    let response = send(&app, delete).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
}

#[tokio::test]
async fn a_posted_note_is_listed_escaped() {
    let app = app().await;
    let form = post_note().body(Body::from("body=hi+%3Cb%3E")).unwrap();
    let response = send(&app, form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/notes");
    let page = text(send(&app, get_request("/notes")).await).await;
    assert!(page.contains("<li>hi &lt;b&gt;</li>"), "{page}");
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let app = app().await;
    let cross_site = post_note()
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("body=spam"))
        .unwrap();
    assert_eq!(send(&app, cross_site).await.status(), StatusCode::FORBIDDEN);
    // An older browser, without Sec-Fetch-Site: judged by Origin.
    let other_origin = post_note()
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("body=spam"))
        .unwrap();
    assert_eq!(
        send(&app, other_origin).await.status(),
        StatusCode::FORBIDDEN
    );
    let page = text(send(&app, get_request("/notes")).await).await;
    assert!(!page.contains("spam"), "{page}");
}

#[tokio::test]
async fn same_origin_posts_and_non_browsers_are_accepted() {
    let app = app().await;
    let same_origin = post_note()
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, "http://localhost:8000")
        .body(Body::from("body=one"))
        .unwrap();
    assert_eq!(
        send(&app, same_origin).await.status(),
        StatusCode::SEE_OTHER
    );
    let origin_only = post_note()
        .header(header::ORIGIN, "http://localhost:8000")
        .body(Body::from("body=two"))
        .unwrap();
    assert_eq!(
        send(&app, origin_only).await.status(),
        StatusCode::SEE_OTHER
    );
    // curl, another service: no Origin, no Sec-Fetch-Site.
    let no_browser = post_note().body(Body::from("body=three")).unwrap();
    assert_eq!(send(&app, no_browser).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn trusted_origins_may_post_cross_site() {
    let db = Db::connect("sqlite::memory:").unwrap();
    db.migrate().await.unwrap();
    let config = Config {
        trusted_origins: TrustedOrigins::parse("https://admin.example.com").unwrap(),
        ..Config::local()
    };
    let app = router(db, config);
    let request = post_note()
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://admin.example.com")
        .body(Body::from("body=ok"))
        .unwrap();
    assert_eq!(send(&app, request).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let app = app().await;
    let big = format!("body={}", "x".repeat(MAX_BODY + 1));
    let response = send(&app, post_note().body(Body::from(big)).unwrap()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn request_ids_are_generated_or_kept_from_a_trusted_proxy() {
    let app = app().await;
    let response = send(&app, get_request("/healthz")).await;
    let id = response.headers()[request_id::HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32, "{id}");

    let from_proxy = Request::get("/healthz")
        .header(request_id::HEADER, "nginx-4f2a")
        .body(Body::empty())
        .unwrap();
    let response = send_from(&app, LOOPBACK_PEER, from_proxy).await;
    assert_eq!(response.headers()[request_id::HEADER], "nginx-4f2a");

    // From anyone else, or not a plain token: replaced.
    let forged = Request::get("/healthz")
        .header(request_id::HEADER, "nginx-4f2a")
        .body(Body::empty())
        .unwrap();
    let response = send_from(&app, PUBLIC_PEER, forged).await;
    assert_ne!(response.headers()[request_id::HEADER], "nginx-4f2a");
    let odd = Request::get("/healthz")
        .header(request_id::HEADER, "a b")
        .body(Body::empty())
        .unwrap();
    let response = send_from(&app, LOOPBACK_PEER, odd).await;
    assert_eq!(response.headers()[request_id::HEADER].len(), 32);
}

#[tokio::test]
async fn metrics_count_requests_by_route_for_loopback_only() {
    let app = app().await;
    send(&app, get_request("/notes")).await;
    send(&app, get_request("/nowhere")).await;
    let response = send(&app, get_request("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    assert!(
        body.contains(
            r#"http_server_request_duration_seconds_count{method="GET",route="/notes",status="200"} 1"#
        ),
        "{body}"
    );
    assert!(body.contains(r#"route="unmatched",status="404""#), "{body}");
    assert!(body.contains("http_server_active_requests"), "{body}");

    let public = send_from(&app, PUBLIC_PEER, get_request("/metrics")).await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    // Through a proxy: judged by the client the proxy names last.
    let through = |peer: &'static str, forwarded_for: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::get("/metrics")
                .header("x-forwarded-for", forwarded_for)
                .body(Body::empty())
                .unwrap();
            send_from(&app, peer, request).await.status()
        }
    };
    // nginx for the public, and a client's forged first entry.
    assert_eq!(
        through(LOOPBACK_PEER, "203.0.113.9").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        through(LOOPBACK_PEER, "127.0.0.1, 203.0.113.9").await,
        StatusCode::NOT_FOUND
    );
    // manage runserver's proxy for a local browser.
    assert_eq!(through(LOOPBACK_PEER, "127.0.0.1").await, StatusCode::OK);
    // An untrusted proxy's word counts for nothing.
    assert_eq!(
        through(PUBLIC_PEER, "127.0.0.1").await,
        StatusCode::NOT_FOUND
    );
    let real_ip_only = Request::get("/metrics")
        .header("x-real-ip", "127.0.0.1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, real_ip_only).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_panicking_handler_gets_the_500_page() {
    async fn boom() -> &'static str {
        panic!("boom")
    }
    let routes = Router::new().route("/boom", get(boom));
    let app = with_middleware(
        routes,
        Config::local(),
        Metrics::new(
            Config::local().metrics_allow,
            Config::local().trusted_proxies,
        ),
    );
    let response = send(&app, get_request("/boom")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let page = text(response).await;
    assert!(page.contains("Server error"), "{page}");
    // Debug builds (tests) show why; release builds never do.
    assert!(page.contains("a handler panicked: boom"), "{page}");
}

#[tokio::test]
async fn healthz_answers_503_while_the_database_is_down() {
    let db = Db::connect("postgres://nobody:secret@127.0.0.1:1/nothing").unwrap();
    let app = router(db, Config::local());
    let response = send(&app, get_request("/healthz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
}
