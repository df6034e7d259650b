//! Stricter rate limits on the paths that need them (a login form, an
//! expensive search), on top of the per-client flood guard every dynamic
//! request has. Each path gets a zone of its own in nginx.

use super::super::checks::*;
use super::super::context::PathLimit;
use super::super::settings::Settings;

/// At most this many paths: each is a location and a 10 MB zone.
const MAX_PATHS: usize = 32;

pub fn path_limits(
    p: &mut Problems,
    s: &Settings,
    ident: &str,
    static_url: &str,
) -> Vec<PathLimit> {
    if s.rate_limit_paths.len() > MAX_PATHS {
        p.0.push(format!(
            "`rate-limit-paths` has {} paths; at most {MAX_PATHS}",
            s.rate_limit_paths.len()
        ));
        return Vec::new();
    }
    let mut limits = Vec::new();
    for (i, (path, limit)) in s.rate_limit_paths.iter().enumerate() {
        let key = format!("rate-limit-paths.\"{}\"", path.escape_debug());
        if !safe(p, &key, path) {
            continue;
        }
        if !path.starts_with('/') {
            p.add(&key, path, "a path starts with `/`");
            continue;
        }
        if let Some(c) = first_not(path, |c| c.is_ascii_alphanumeric() || "/-._~".contains(c)) {
            p.add(
                &key,
                path,
                format!(
                    "{} is not allowed in a rate-limited path (`a-z`, `0-9`, `/-._~`)",
                    describe(c)
                ),
            );
            continue;
        }
        if path == "/" {
            p.add(
                &key,
                path,
                "`/` is every request: use `rate-limit` for that",
            );
            continue;
        }
        if !static_url.is_empty()
            && (path.starts_with(static_url) || static_url.starts_with(path.as_str()))
        {
            p.add(
                &key,
                path,
                format!("overlaps the static files at `{static_url}`, which nginx serves without the app"),
            );
            continue;
        }
        let Some(rate) = number_with_unit(
            p,
            &format!("{key}.rate"),
            &limit.rate,
            &["r/s", "r/m"],
            "5r/m",
        ) else {
            continue;
        };
        if rate
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u64>()
            == Ok(0)
        {
            p.add(&format!("{key}.rate"), &rate, "expected at least 1 request");
            continue;
        }
        if !(1..=100_000).contains(&limit.burst) {
            p.add(
                &format!("{key}.burst"),
                &limit.burst.to_string(),
                "expected 1 to 100000",
            );
            continue;
        }
        limits.push(PathLimit {
            path: path.clone(),
            zone: format!("{ident}_path{i}"),
            rate,
            burst: limit.burst,
        });
    }
    limits
}
