//! `manage collectstatic` (#13): hashed names, nested references and
//! source maps, the manifest, incremental runs, `--clear`, `--dry-run`,
//! hostile trees, and the output served by a real nginx with
//! `gzip_static`/`brotli_static` and immutable caching for hashed names.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;
use sha2::Digest as _;

use crate::support::deploy::site;
use crate::support::{eventually, free_port, generate, manage, mkfifo, request, Running};

/// A generated project with a static tree of nested references.
fn project() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = generate("assets");
    let s = dir.join("static");
    for (path, body) in [
        ("img/logo.png", "\u{89}PNG not really\n"),
        (
            "css/base.css",
            ".logo { background: url(\"../img/logo.png\") }\n",
        ),
        (
            "css/site.css",
            "@import \"base.css\";\nbody { color: teal }\n/*# sourceMappingURL=site.css.map */\n",
        ),
        (
            "css/site.css.map",
            "{\"version\":3,\"sources\":[\"site.scss\"]}\n",
        ),
        (
            "js/app.js",
            "console.log('hi');\n//# sourceMappingURL=app.js.map\n",
        ),
        ("js/app.js.map", "{\"version\":3}\n"),
    ] {
        fs::create_dir_all(s.join(path).parent().unwrap()).unwrap();
        fs::write(s.join(path), body).unwrap();
    }
    (tmp, dir)
}

fn collect(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    manage()
        .current_dir(dir)
        // The default output is in the project's own target directory.
        .env_remove("CARGO_TARGET_DIR")
        .arg("collectstatic")
        .args(args)
        .assert()
}

fn out(dir: &Path) -> PathBuf {
    dir.join("target/staticfiles")
}

fn manifest(dir: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(out(dir).join("staticfiles.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], "1.1");
    serde_json::from_value(json["paths"].clone()).unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(out(dir).join(name)).unwrap()
}

/// Every file under `root` with its inode and mtime.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    let mut all = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                dirs.push(p);
            } else {
                all.insert(p, (m.ino(), m.mtime(), m.mtime_nsec()));
            }
        }
    }
    all
}

#[test]
fn collectstatic_hashes_names_and_rewrites_nested_references() {
    let (_tmp, dir) = project();
    collect(&dir, &[]).success();
    let m = manifest(&dir);
    assert_eq!(m.len(), 7, "{m:#?}"); // the six above and favicon.svg
                                      // Names carry the first 12 hex digits of the SHA-256 of what was written.
    for (plain, hashed) in &m {
        let bytes = fs::read(out(&dir).join(hashed)).unwrap();
        let hash = format!("{:x}", sha2::Sha256::digest(&bytes));
        let (stem, ext) = plain.rsplit_once('.').unwrap();
        assert_eq!(hashed, &format!("{stem}.{}.{ext}", &hash[..12]));
        assert_eq!(fs::read(out(&dir).join(plain)).unwrap(), bytes, "{plain}");
    }
    let base = read(&dir, &m["css/base.css"]);
    let logo = m["img/logo.png"].strip_prefix("img/").unwrap();
    assert!(base.contains(&format!("url(\"../img/{logo}\")")), "{base}");
    let site = read(&dir, &m["css/site.css"]);
    let base_name = m["css/base.css"].strip_prefix("css/").unwrap();
    let map_name = m["css/site.css.map"].strip_prefix("css/").unwrap();
    assert!(site.contains(&format!("@import \"{base_name}\"")), "{site}");
    assert!(
        site.contains(&format!("sourceMappingURL={map_name} */")),
        "{site}"
    );
    let js = read(&dir, &m["js/app.js"]);
    let js_map = m["js/app.js.map"].strip_prefix("js/").unwrap();
    assert!(
        js.contains(&format!("//# sourceMappingURL={js_map}\n")),
        "{js}"
    );

    // A new image renames base.css (its URL changed) and site.css, which
    // imports it: references are settled until stable, two levels deep.
    fs::write(dir.join("static/img/logo.png"), "\u{89}PNG v2\n").unwrap();
    collect(&dir, &[]).success();
    let m2 = manifest(&dir);
    for changed in ["img/logo.png", "css/base.css", "css/site.css"] {
        assert_ne!(m[changed], m2[changed], "{changed}");
    }
    for same in ["css/site.css.map", "js/app.js", "favicon.svg"] {
        assert_eq!(m[same], m2[same], "{same}");
    }
    let site = read(&dir, &m2["css/site.css"]);
    assert!(site.contains(m2["css/base.css"].strip_prefix("css/").unwrap()));
    // The previous release's hashed names stay for pages still open.
    assert!(out(&dir).join(&m["css/site.css"]).is_file());
}

#[test]
fn collectstatic_second_run_writes_nothing_and_dry_run_writes_nothing() {
    let (_tmp, dir) = project();
    collect(&dir, &[]).success();
    let before = snapshot(&out(&dir));
    collect(&dir, &[])
        .success()
        .stderr(predicate::str::contains("up to date; nothing was written"));
    assert_eq!(
        snapshot(&out(&dir)),
        before,
        "an unchanged tree rewrote files"
    );

    fs::write(dir.join("static/js/app.js"), "console.log('v2');\n").unwrap();
    collect(&dir, &["--dry-run"])
        .success()
        .stderr(predicate::str::contains("would write 1 of 7 files"));
    assert_eq!(snapshot(&out(&dir)), before, "--dry-run wrote");
    collect(&dir, &[])
        .success()
        .stderr(predicate::str::contains("1 written"));
    // A deleted output is noticed and written again.
    let m = manifest(&dir);
    fs::remove_file(out(&dir).join(&m["favicon.svg"])).unwrap();
    collect(&dir, &[])
        .success()
        .stderr(predicate::str::contains("1 written"));
    assert!(out(&dir).join(&m["favicon.svg"]).is_file());
}

#[test]
fn collectstatic_clear_empties_only_its_own_directory() {
    let (_tmp, dir) = project();
    collect(&dir, &[]).success();
    let old = manifest(&dir)["js/app.js"].clone();
    fs::remove_file(dir.join("static/js/app.js")).unwrap();
    collect(&dir, &["--clear", "--dry-run"]).success();
    assert!(out(&dir).join(&old).is_file(), "--dry-run cleared");
    collect(&dir, &["--clear"]).success();
    assert!(!out(&dir).join(&old).exists() && !out(&dir).join("js/app.js").exists());
    assert_eq!(manifest(&dir).len(), 6);

    // A directory collectstatic did not write is never cleared.
    let foreign = dir.join("precious");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("keep.txt"), "mine").unwrap();
    collect(&dir, &["--clear", "--out", "precious"])
        .failure()
        .stderr(predicate::str::contains("refusing to clear"));
    assert!(foreign.join("keep.txt").is_file());
}

#[test]
fn collectstatic_refuses_fifos_and_symlinks_out_of_the_tree() {
    let (tmp, dir) = project();
    let s = dir.join("static");
    mkfifo(&s.join("css/pipe.css"));
    let secret = tmp.path().join("secret.key");
    fs::write(&secret, "private").unwrap();
    std::os::unix::fs::symlink(&secret, s.join("js/key.js")).unwrap();
    // A symlink inside the tree is fine.
    std::os::unix::fs::symlink("../css/base.css", s.join("js/base.css")).unwrap();
    let started = std::time::Instant::now();
    collect(&dir, &[])
        .failure()
        .stderr(predicate::str::contains("`css/pipe.css` is a FIFO"))
        .stderr(predicate::str::contains("`js/key.js` is a symlink to"))
        .stderr(predicate::str::contains("nothing was written"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "blocked on the FIFO"
    );
    assert!(!out(&dir).exists());

    fs::remove_file(s.join("css/pipe.css")).unwrap();
    fs::remove_file(s.join("js/key.js")).unwrap();
    collect(&dir, &[]).success();
    assert_eq!(read(&dir, "js/base.css"), read(&dir, "css/base.css"));

    // A symlink planted in the output tree is not followed.
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::remove_dir_all(out(&dir).join("img")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out(&dir).join("img")).unwrap();
    fs::write(dir.join("static/img/logo.png"), "new").unwrap();
    collect(&dir, &[])
        .failure()
        .stderr(predicate::str::contains("is a symlink, not a directory"));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    // Output inside the static directory would collect itself.
    collect(&dir, &["--out", "static/build"])
        .failure()
        .stderr(predicate::str::contains("overlap"));
}

/// One response from nginx, with the Accept-Encoding given.
fn fetch(port: u16, path: &str, encoding: &str) -> crate::support::Response {
    request(
        &format!("127.0.0.1:{port}"),
        &format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
        ),
    )
    .unwrap()
}

#[test]
fn collectstatic_output_served_precompressed_by_nginx() {
    let s = site("served");
    let root = s.scratch.join("static");
    let css = "body { color: teal; margin: 0 }\n".repeat(40);
    fs::write(s.project.join("static/css/site.css"), &css).unwrap();
    // A plain name with a dotted date in it is not a hash.
    fs::create_dir_all(s.project.join("static/js")).unwrap();
    fs::write(s.project.join("static/js/vendor.20261127.js"), "v()\n").unwrap();
    collect(&s.project, &["--out", root.to_str().unwrap()]).success();
    let m: BTreeMap<String, String> = {
        let j: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join("staticfiles.json")).unwrap()).unwrap();
        serde_json::from_value(j["paths"].clone()).unwrap()
    };
    let hashed = &m["css/site.css"];
    // Proof that nginx sends our file and does not compress on the fly:
    // the precompressed copies say something the original does not.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"from the .gz file").unwrap();
    let gz = gz.finish().unwrap();
    let mut br = Vec::new();
    brotli::BrotliCompress(&mut &b"from the .br file"[..], &mut br, &Default::default()).unwrap();
    for name in [hashed.clone(), "css/site.css".to_owned()] {
        assert!(root.join(format!("{name}.gz")).is_file(), "no {name}.gz");
        assert!(root.join(format!("{name}.br")).is_file(), "no {name}.br");
    }
    fs::write(root.join(format!("{hashed}.gz")), &gz).unwrap();
    fs::write(root.join(format!("{hashed}.br")), &br).unwrap();

    let http = free_port();
    let mut args = s.test_args(http, free_port());
    args.extend(["--tls", "off", "--listen-address", "127.0.0.1"].map(String::from));
    let deploy = s.scratch.join("deploy");
    s.deploy(&deploy, &args);
    let conf = fs::read_to_string(deploy.join("nginx/served/sites/http.conf")).unwrap();
    assert!(conf.contains("gzip_static on;") && conf.contains("brotli_static on;"));
    let mut nginx = s.nginx(&deploy);
    nginx.args(["-g", "daemon off;"]);
    let _nginx = Running::start(nginx);
    eventually(Duration::from_secs(10), || {
        request(
            &format!("127.0.0.1:{http}"),
            "GET /static/staticfiles.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .ok()
        .filter(|r| r.status == 200)
    })
    .expect("nginx answers within 10 s");

    let path = format!("/static/{hashed}");
    let r = fetch(http, &path, "gzip");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, gz, "not the precompressed .gz");
    assert_eq!(
        r.header("content-length"),
        Some(gz.len().to_string().as_str())
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = fetch(http, &path, "br, gzip");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.body, br, "not the precompressed .br");
    let r = fetch(http, &path, "identity");
    assert_eq!(
        (r.header("content-encoding"), r.text()),
        (None, css.clone())
    );

    // The plain name: its own (untouched) .gz, revalidated on every use.
    let r = fetch(http, "/static/css/site.css", "gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, fs::read(root.join("css/site.css.gz")).unwrap());
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    // Not hashed, though it has an extension: never immutable.
    let vendor = format!("/static/{}", m["js/vendor.20261127.js"]);
    assert_eq!(
        fetch(http, &vendor, "").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    for plain in [
        "/static/favicon.svg",
        "/static/staticfiles.json",
        "/static/js/vendor.20261127.js",
    ] {
        assert_eq!(
            fetch(http, plain, "gzip").header("cache-control"),
            Some("no-cache"),
            "{plain}"
        );
    }
}
