//! The JSON lines' shape, escaping and dates.

use super::*;
use tracing_subscriber::layer::SubscriberExt;

/// The lines `log` writes, each parsed as JSON.
fn lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
    let mut out = String::new();
    let subscriber = tracing_subscriber::registry().with(Capture);
    tracing::subscriber::with_default(subscriber, log);
    CAPTURED.with(|c| out.push_str(&c.borrow()));
    CAPTURED.with(|c| c.borrow_mut().clear());
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

thread_local! {
    static CAPTURED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// [`Json`]'s lines, kept instead of written.
struct Capture;

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        Json.on_new_span(attrs, id, ctx);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        Json.on_record(id, values, ctx);
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = String::new();
        format_event(&mut line, event, &ctx);
        CAPTURED.with(|c| c.borrow_mut().push_str(&line));
    }
}

#[test]
fn an_event_is_one_object_with_its_span() {
    let got = lines(|| {
        let span = tracing::info_span!("request", request_id = "abc", method = "GET");
        let _enter = span.enter();
        span.record("method", "POST");
        tracing::info!(target: "access", status = 200u16, ms = 1.5, ok = true, "done \"x\"\n\t\u{1}\\");
    });
    assert_eq!(got.len(), 1);
    let line = &got[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "access");
    assert_eq!(line["message"], "done \"x\"\n\t\u{1}\\");
    assert_eq!(line["status"], 200);
    assert_eq!(line["ms"], 1.5);
    assert_eq!(line["ok"], true);
    assert_eq!(line["span"]["name"], "request");
    assert_eq!(line["span"]["request_id"], "abc");
    assert_eq!(line["span"]["method"], "POST");
    assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn every_byte_to_escape_is_found_wherever_it_is() {
    for b in 0..=255u8 {
        for at in 0..20 {
            let mut text = vec![b'a'; 20];
            text[at] = b;
            let expected = ESCAPE[usize::from(b)].then_some(at);
            assert_eq!(first_escape(&text), expected, "byte {b:#x} at {at}");
        }
    }
    assert_eq!(first_escape("ééé\"".as_bytes()), Some(6));
    assert_eq!(first_escape(b""), None);
}

#[test]
fn dates_follow_the_calendar() {
    let text = |secs| String::from_utf8(date_time(secs).to_vec()).unwrap();
    assert_eq!(text(0), "1970-01-01T00:00:00.");
    assert_eq!(text(951_868_799), "2000-02-29T23:59:59.");
    assert_eq!(text(1_709_251_200), "2024-03-01T00:00:00.");
    assert_eq!(text(4_102_444_799), "2099-12-31T23:59:59.");
    let mut now = String::new();
    timestamp(&mut now);
    assert_eq!(now.len(), 27, "{now}");
    assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
}

#[test]
fn odd_values_stay_valid_json() {
    let got = lines(|| {
        let span = tracing::info_span!("empty");
        let entered = span.enter();
        tracing::warn!(
            nan = f64::NAN,
            big = u128::MAX,
            neg = -1i64,
            "{}",
            "\u{7f}é😀"
        );
        drop(entered);
        tracing::error!(error = &std::io::Error::other("bad \"disk\"") as &dyn std::error::Error);
    });
    assert_eq!(got.len(), 2);
    assert!(got[0]["nan"].is_null());
    assert_eq!(got[0]["neg"], -1);
    assert_eq!(got[0]["message"], "\u{7f}é😀");
    assert_eq!(got[0]["span"], serde_json::json!({"name": "empty"}));
    assert_eq!(got[1]["error"], "bad \"disk\"");
    assert!(got[1].get("span").is_none());
}
