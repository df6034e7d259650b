//! Where no nginx serves them (Kubernetes behind an ingress), the app
//! serves its static files from STATIC_ROOT: plain names below it only.

mod support;

use support::{TempDir, command, get, start};

#[test]
fn static_root_is_served_under_static_url_and_nothing_outside_it() {
    let dir = TempDir::new();
    let root = dir.0.join("collected");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::write(root.join("css/site.css"), "body { margin: 0 }\n").unwrap();
    std::fs::write(root.join(".secret"), "no\n").unwrap();
    std::fs::write(dir.0.join("outside.txt"), "no\n").unwrap();
    let mut cmd = command(&dir, None);
    cmd.env("STATIC_ROOT", &root).env("STATIC_URL", "/static/");
    let server = start(cmd);

    let css = get(&server.addr, "/static/css/site.css");
    assert!(css.starts_with("HTTP/1.1 200"), "{css}");
    assert!(css.contains("content-type: text/css"), "{css}");
    assert!(css.contains("x-content-type-options: nosniff"), "{css}");
    assert!(css.ends_with("body { margin: 0 }\n"), "{css}");
    for path in [
        "/static/../outside.txt",
        "/static/%2e%2e/outside.txt",
        "/static/.secret",
        "/static/css",
        "/static/css/",
        "/static/missing.js",
    ] {
        let response = get(&server.addr, path);
        assert!(response.starts_with("HTTP/1.1 404"), "{path}: {response}");
    }
    // The app's own pages are untouched.
    assert!(get(&server.addr, "/healthz").starts_with("HTTP/1.1 200"));
}

#[test]
fn without_static_root_static_paths_are_not_the_apps() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("static")).unwrap();
    std::fs::write(dir.0.join("static/x.css"), "x\n").unwrap();
    let server = start(command(&dir, None));
    let response = get(&server.addr, "/static/x.css");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
