//! References between static files: finding them in CSS and JavaScript,
//! and rewriting them to hashed names.
//!
//! What Django's ManifestStaticFilesStorage rewrites: in CSS, `url(...)`
//! (quoted or not) and `@import "..."`; in CSS and JavaScript, the
//! `sourceMappingURL` comment. A reference counts only if it names a file
//! of the tree: relative to the referring file, or absolute under
//! `static-url`. External URLs, `data:` URIs, fragments and paths that
//! climb out of the tree are left exactly as written. Rewriting inserts the
//! hash into the text as written (`../img/a.png?v=1#x` becomes
//! `../img/a.HASH.png?v=1#x`), so spelling, query and fragment survive.

use percent_encoding::percent_decode_str;

use super::hashing::hashed_name;

/// Which references a file can hold, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Css,
    Js,
    Other,
}

pub fn kind(rel: &str) -> Kind {
    let ext = rel.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("css") => Kind::Css,
        Some("js" | "mjs") => Kind::Js,
        _ => Kind::Other,
    }
}

/// One reference: `bytes[start..path_end]` is the path part of the URL
/// text, and `target` the tree path it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub start: usize,
    pub path_end: usize,
    pub target: String,
}

/// Every reference in `bytes` (a file at tree path `rel`) to a file for
/// which `exists` says yes, in order, without overlaps.
pub fn find(
    kind: Kind,
    bytes: &[u8],
    rel: &str,
    static_url: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Vec<Ref> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    if kind == Kind::Other {
        return Vec::new();
    }
    if kind == Kind::Css {
        for at in find_all(bytes, b"url(") {
            spans.extend(url_value(bytes, at + 4));
        }
        for at in find_all(bytes, b"@import") {
            let mut i = at + 7;
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            if let Some(&q @ (b'"' | b'\'')) = bytes.get(i) {
                spans.extend(quoted(bytes, i + 1, q));
            }
        }
    }
    for at in find_all(bytes, b"sourceMappingURL=") {
        let start = at + b"sourceMappingURL=".len();
        let end = bytes[start..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'*' | b'"' | b'\''))
            .map_or(bytes.len(), |n| start + n);
        spans.push((start, end));
    }
    spans.sort_unstable();
    let mut refs: Vec<Ref> = Vec::new();
    for (start, end) in spans {
        if refs.last().is_some_and(|r| start < r.path_end) || start >= end {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes[start..end]) else {
            continue;
        };
        let path_len = text.find(['?', '#']).unwrap_or(text.len());
        if let Some(target) = resolve(rel, &text[..path_len], static_url) {
            if exists(&target) {
                refs.push(Ref {
                    start,
                    path_end: start + path_len,
                    target,
                });
            }
        }
    }
    refs
}

/// `bytes` with each reference's path replaced by its hashed name;
/// `hash_of` gives the hash of a target (`None` leaves it as written).
pub fn rewrite(bytes: &[u8], refs: &[Ref], hash_of: &dyn Fn(&str) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + refs.len() * 13);
    let mut at = 0;
    for r in refs {
        let Some(hash) = hash_of(&r.target) else {
            continue;
        };
        out.extend_from_slice(&bytes[at..r.start]);
        // find() only keeps UTF-8 spans.
        let text = std::str::from_utf8(&bytes[r.start..r.path_end]).unwrap_or_default();
        out.extend_from_slice(hashed_name(text, &hash).as_bytes());
        at = r.path_end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// The tree path a URL path names from the file at `rel`, if it names one
/// inside the tree.
fn resolve(rel: &str, url: &str, static_url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.starts_with("//") {
        return None;
    }
    // A scheme (`http:`, `data:`, `about:`) comes before any slash.
    if let Some(colon) = url.find(':') {
        if url.find('/').is_none_or(|slash| colon < slash) {
            return None;
        }
    }
    let path = percent_decode_str(url).decode_utf8().ok()?;
    let (base, path) = match path.strip_prefix('/') {
        Some(_) => ("", path.strip_prefix(static_url)?),
        None => (rel.rsplit_once('/').map_or("", |(dir, _)| dir), &*path),
    };
    if path.ends_with('/') {
        return None;
    }
    let mut segments: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    (!segments.is_empty()).then(|| segments.join("/"))
}

/// Where `needle` starts in `hay`, ASCII case-insensitively.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    hay.windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| w.eq_ignore_ascii_case(needle))
        .map(|(i, _)| i)
}

/// The value of `url(` starting at `i`: quoted, or up to `)`.
fn url_value(bytes: &[u8], mut i: usize) -> Option<(usize, usize)> {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    match bytes.get(i)? {
        &q @ (b'"' | b'\'') => quoted(bytes, i + 1, q),
        _ => {
            let len = bytes[i..].iter().position(|&b| b == b')' || b == b'\n')?;
            let end = i + bytes[i..i + len].trim_ascii_end().len();
            (bytes[i + len] == b')').then_some((i, end))
        }
    }
}

fn quoted(bytes: &[u8], start: usize, quote: u8) -> Option<(usize, usize)> {
    let len = bytes[start..]
        .iter()
        .position(|&b| b == quote || b == b'\n')?;
    (bytes[start + len] == quote).then_some((start, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(kind: Kind, text: &str) -> Vec<String> {
        let exists = |p: &str| !p.contains("missing");
        find(
            kind,
            text.as_bytes(),
            "css/app/site.css",
            "/static/",
            &exists,
        )
        .into_iter()
        .map(|r| format!("{}={}", &text[r.start..r.path_end], r.target))
        .collect()
    }

    #[test]
    fn css_references_are_found_and_resolved() {
        let css = r#"@import "base.css"; @IMPORT 'https://x/y.css';
a { background: URL( ../../img/a.png?v=1#x ) }
b { background: url("/static/img/b.svg") url(data:image/png;base64,AA) url(//cdn/x.png) }
c { background: url('/other/c.png') url(../../../out.png) url(missing.png) url(#frag) }
/*# sourceMappingURL=site.css.map */"#;
        assert_eq!(
            refs(Kind::Css, css),
            [
                "base.css=css/app/base.css",
                "../../img/a.png=img/a.png",
                "/static/img/b.svg=img/b.svg",
                "site.css.map=css/app/site.css.map",
            ]
        );
        let js = "let u = 'url(x.png)';\n//# sourceMappingURL=app.js.map\n";
        assert_eq!(refs(Kind::Js, js), ["app.js.map=css/app/app.js.map"]);
        assert!(refs(Kind::Other, css).is_empty());
    }

    #[test]
    fn rewriting_keeps_query_fragment_and_spelling() {
        let css = "a{background:url(../../img/a%20b.png?v=1#x)}/*# sourceMappingURL=s.css.map */";
        let found = find(
            Kind::Css,
            css.as_bytes(),
            "css/app/s.css",
            "/static/",
            &|_| true,
        );
        assert_eq!(found[0].target, "img/a b.png");
        let out = rewrite(css.as_bytes(), &found, &|t: &str| {
            (t != "css/app/s.css.map").then(|| "0123456789abcdef".to_owned())
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a{background:url(../../img/a%20b.0123456789ab.png?v=1#x)}/*# sourceMappingURL=s.css.map */"
        );
    }
}
