//! `LOG_FORMAT=json`: one JSON object per line.
//!
//! ```json
//! {"timestamp":"2026-01-01T12:00:00.000001Z","level":"INFO","message":"…","status":200,
//!  "target":"access","span":{"request_id":"…","method":"GET","path":"/","name":"request"}}
//! ```
//!
//! The event's fields at the top level, its target, and the fields of the
//! span it happened in (the `request` span: every line of a request carries
//! its id). A span's fields are written as JSON once, when the span is
//! made, and copied into each of its lines; a line is built in a buffer of
//! the thread and handed to the [`sink`](super::sink).

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::sink;

/// The layer that writes the lines.
pub struct Json;

/// A span's fields as JSON members (`"a":1,"b":"x"`), kept in the span:
/// in place when short (a request's id, method and path are), saving an
/// allocation per request.
struct Fields {
    len: usize,
    inline: [u8; INLINE],
    long: String,
}

const INLINE: usize = 200;

impl Fields {
    fn new(json: &str) -> Fields {
        let mut fields = Fields {
            len: json.len(),
            inline: [0; INLINE],
            long: String::new(),
        };
        match fields.inline.get_mut(..json.len()) {
            Some(inline) => inline.copy_from_slice(json.as_bytes()),
            None => fields.long = json.to_owned(),
        }
        fields
    }

    fn as_str(&self) -> &str {
        if self.long.is_empty() {
            // Copied from a `str` whole, so always UTF-8.
            std::str::from_utf8(&self.inline[..self.len]).unwrap_or_default()
        } else {
            &self.long
        }
    }
}

impl<S> Layer<S> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        thread_local! {
            static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let Some(span) = ctx.span(id) else { return };
        let fields = TEXT.with(|text| {
            let mut members = Members::new(text.take());
            attrs.record(&mut members);
            let fields = Fields::new(&members.out);
            members.out.clear();
            text.replace(members.out);
            fields
        });
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<Fields>() {
            let mut members = Members::new(fields.as_str().to_owned());
            values.record(&mut members);
            *fields = Fields::new(&members.out);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            // A line logged while this thread writes one (a `Debug` that
            // logs) gets a buffer of its own.
            let mut own = String::new();
            let mut borrowed = line.try_borrow_mut();
            let line = match borrowed.as_deref_mut() {
                Ok(line) => line,
                Err(_) => &mut own,
            };
            line.clear();
            format_event(line, event, &ctx);
            let level = *event.metadata().level();
            sink::write(line.as_bytes(), level <= Level::WARN);
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
        });
    }
}

fn format_event<S>(line: &mut String, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    let mut members = Members {
        out: std::mem::take(line),
        first: false,
    };
    event.record(&mut members);
    *line = members.out;
    line.push_str(",\"target\":");
    string(line, meta.target());
    if let Some(span) = ctx.event_span(event) {
        line.push_str(",\"span\":{");
        if let Some(fields) = span.extensions().get::<Fields>() {
            let fields = fields.as_str();
            if !fields.is_empty() {
                line.push_str(fields);
                line.push(',');
            }
        }
        line.push_str("\"name\":");
        string(line, span.name());
        line.push('}');
    }
    line.push_str("}\n");
}

/// Writes fields as JSON object members, comma-separated.
struct Members {
    out: String,
    first: bool,
}

impl Members {
    fn new(out: String) -> Members {
        let first = out.is_empty();
        Members { out, first }
    }

    fn key(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        string(&mut self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for Members {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        string(&mut self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        thread_local! {
            static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
        }
        self.key(field);
        // Written whole, then escaped in one pass: a message is written in
        // many small pieces, and escaping each costs more than the copy.
        TEXT.with(|text| match text.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let _ = write!(text, "{value:?}");
                string(&mut self.out, &text);
                if text.capacity() > 64 * 1024 {
                    *text = String::new();
                }
            }
            // A `Debug` that logs: this thread's buffer is in use.
            Err(_) => string(&mut self.out, &format!("{value:?}")),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            // JSON has no NaN or infinity.
            self.out.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// `value` as a JSON string.
fn string(out: &mut String, value: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(value);
    out.push('"');
}

/// Text written into a JSON string: quotes, backslashes and control
/// characters escaped.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Every byte that needs escaping is ASCII, so a byte search finds
        // them in UTF-8 text and the pieces between stay whole characters.
        let bytes = s.as_bytes();
        let mut start = 0;
        while let Some(offset) = first_escape(&bytes[start..]) {
            let at = start + offset;
            self.0.push_str(&s[start..at]);
            match bytes[at] {
                b'"' => self.0.push_str("\\\""),
                b'\\' => self.0.push_str("\\\\"),
                b'\n' => self.0.push_str("\\n"),
                b'\r' => self.0.push_str("\\r"),
                b'\t' => self.0.push_str("\\t"),
                b => {
                    let _ = write!(self.0, "\\u{b:04x}");
                }
            }
            start = at + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

/// Where the first byte to escape is: eight bytes at a time while there is
/// none (most text has none), then byte by byte.
fn first_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // Whether some byte of `x` is below `n` (n <= 0x80; exact).
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH != 0;
    let mut at = 0;
    for chunk in bytes.chunks_exact(8) {
        let x = u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        if below(x, 0x20) || below(quote, 1) || below(backslash, 1) {
            break;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| ESCAPE[usize::from(b)])
        .map(|offset| at + offset)
}

/// The bytes JSON strings escape: control characters, `"` and `\\`.
static ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The time now in UTC as RFC 3339 with microseconds,
/// `2026-01-01T12:00:00.000001Z`; the date and time of day are worked out
/// once a second per thread.
fn timestamp(out: &mut String) {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (known, mut text) = SECOND.get();
    if known != secs {
        text = date_time(secs);
        SECOND.set((secs, text));
    }
    // Only ASCII digits and separators.
    out.push_str(std::str::from_utf8(&text).unwrap_or("0000-00-00T00:00:00."));
    let mut micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or("000000"));
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` of a Unix time (the civil calendar from day
/// numbers, as in Howard Hinnant's `civil_from_days`).
fn date_time(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999);
    let mut text = *b"0000-00-00T00:00:00.";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, (rest / 3600) as i64);
    put(14, 2, (rest / 60 % 60) as i64);
    put(17, 2, (rest % 60) as i64);
    text
}

#[cfg(test)]
mod tests;
