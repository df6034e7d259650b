//! What a request's conditions ask of a static file: validators (ETag,
//! Last-Modified), `If-Range`, and the one byte range answered with 206.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap};

pub(super) struct Validators {
    pub(super) etag: String,
    pub(super) last_modified: String,
    modified: SystemTime,
}

impl Validators {
    pub(super) fn of(meta: &std::fs::Metadata) -> Validators {
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Validators {
            etag: format!("\"{:x}-{:x}\"", meta.len(), nanos),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        }
    }

    /// `If-None-Match`, or else `If-Modified-Since`, says the client's copy
    /// is current.
    pub(super) fn not_modified(&self, request: &HeaderMap) -> bool {
        match request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            Some(tags) => tags
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == self.etag || t == "*"),
            None => request
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .is_some_and(|since| whole_seconds(self.modified) <= whole_seconds(since)),
        }
    }

    /// RFC 9110 §13.1.5: a Range is honoured only while the client's
    /// validator still names this file: an entity tag by strong comparison
    /// (a weak tag never matches), a date only when it is exactly our
    /// Last-Modified. Anything else is false, and the whole file is sent.
    pub(super) fn if_range_holds(&self, request: &HeaderMap) -> bool {
        let Some(value) = request.get(header::IF_RANGE) else {
            return true;
        };
        let Ok(value) = value.to_str().map(str::trim) else {
            return false;
        };
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        httpdate::parse_http_date(value)
            .is_ok_and(|date| whole_seconds(date) == whole_seconds(self.modified))
    }
}

/// HTTP dates have whole seconds.
pub(super) fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ranged {
    /// No usable range: send the whole file with 200.
    Whole,
    /// These bytes, with 206.
    Part(Range<u64>),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// Parses a single byte range (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-`
/// or `bytes=-n`. A header we cannot use (another unit, bad syntax) is
/// ignored, as the RFC allows.
pub(super) fn parse_range(value: &str, len: u64) -> Ranged {
    let Some((unit, set)) = value.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        // Several ranges would need a multipart/byteranges body. A server
        // may ignore Range and send the whole file (RFC 9110 §14.2), and
        // browsers and download tools ask for one range at a time.
        return Ranged::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    // Digits only; a number too large for u64 is still a number, past
    // any end.
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (number(first), number(last)) {
        (Some(first), parsed) => {
            let last = match parsed {
                Some(last) if last < first => return Ranged::Whole,
                None if !last.is_empty() => return Ranged::Whole,
                parsed => parsed,
            };
            if first >= len {
                return Ranged::Unsatisfiable;
            }
            let end = last.map_or(len, |last| last.saturating_add(1).min(len));
            Ranged::Part(first..end)
        }
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len - suffix.min(len)..len)
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn single_byte_ranges() {
        use Ranged::*;
        for (header, expected) in [
            ("bytes=0-0", Part(0..1)),
            ("bytes=10-19", Part(10..20)),
            ("bytes=10-", Part(10..100)),
            ("bytes=-10", Part(90..100)),
            ("bytes=90-1000", Part(90..100)),
            ("bytes=-1000", Part(0..100)),
            ("bytes=99-99", Part(99..100)),
            ("bytes=0-99999999999999999999999", Part(0..100)),
            ("Bytes = 5-6", Part(5..7)),
            ("bytes=5-6, ", Part(5..7)),
        ] {
            assert_eq!(parse_range(header, 100), expected, "{header}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        for header in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(header, 100), Ranged::Unsatisfiable, "{header}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn unusable_ranges_get_the_whole_file() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=6-5",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1 -2",
            "bytes=--1",
            "items=0-1",
            // Several ranges: answered with the whole file, see parse_range.
            "bytes=0-1,5-6",
            "bytes=0-1, 200-300",
        ] {
            assert_eq!(parse_range(header, 100), Ranged::Whole, "{header}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let modified = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let v = Validators {
            etag: "\"64-abc\"".into(),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        };
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_RANGE, value.parse().unwrap());
            v.if_range_holds(&h)
        };
        assert!(v.if_range_holds(&HeaderMap::new()));
        assert!(with("\"64-abc\""));
        assert!(with(&v.last_modified));
        assert!(!with("W/\"64-abc\""), "a weak tag never matches");
        assert!(!with("\"64-abd\""));
        assert!(!with(&httpdate::fmt_http_date(
            modified + Duration::from_secs(1)
        )));
        assert!(!with(&httpdate::fmt_http_date(
            modified - Duration::from_secs(1)
        )));
        assert!(!with("yesterday"));
    }
}
