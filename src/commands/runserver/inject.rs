//! Putting the live-reload snippet into HTML pages as they stream by.
//!
//! Only a complete `200` HTML page with no content coding is rewritten
//! ([`injectable`]); partial (`206`) and compressed bodies pass untouched.
//! The snippet goes before the last `</body>`, or at the end. The body is
//! not buffered: bytes flow on as they come, holding back only what
//! follows the last `</body>` seen so far (bounded by [`MAX_HELD`]), so a
//! streamed page shows progressively and a huge one costs no memory. The
//! length grows by exactly the snippet's, for `GET` and `HEAD` alike, and
//! validators and digests of the app's bytes are dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};

/// At most this much is held back after a `</body>` before giving up on it
/// (the snippet then goes at a later `</body>` or at the end).
const MAX_HELD: usize = 1024 * 1024;
const CLOSE: &[u8] = b"</body>";

/// Whether a response is a complete, unencoded HTML page we may rewrite.
pub fn injectable(parts: &hyper::http::response::Parts) -> bool {
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let identity = parts
        .headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .all(|c| c.trim().eq_ignore_ascii_case("identity") || c.trim().is_empty());
    let ranged = parts.headers.contains_key(header::CONTENT_RANGE);
    html && identity && !ranged && parts.status == hyper::StatusCode::OK
}

/// Adjusts the headers of a page that gets `added` more bytes.
pub fn adjust_headers(headers: &mut HeaderMap, added: usize) {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(len) => {
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(len + added as u64),
            );
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
    // They describe the app's bytes, not these.
    for name in [
        "etag",
        "last-modified",
        "content-md5",
        "digest",
        "content-digest",
        "repr-digest",
        "accept-ranges",
    ] {
        headers.remove(name);
    }
}

/// A body with the snippet put in.
pub struct Injected<B> {
    inner: B,
    snippet: Option<Bytes>,
    /// Bytes not yet sent: from the last `</body>` seen (when `at_close`),
    /// or the last few bytes that may start one.
    held: BytesMut,
    at_close: bool,
    done: bool,
}

impl<B> Injected<B> {
    pub fn new(inner: B, snippet: String) -> Injected<B> {
        Injected {
            inner,
            snippet: Some(Bytes::from(snippet)),
            held: BytesMut::new(),
            at_close: false,
            done: false,
        }
    }

    /// Takes new bytes; returns what can be sent now.
    fn push(&mut self, data: &[u8]) -> Bytes {
        let searched_from = self.held.len().saturating_sub(CLOSE.len() - 1);
        self.held.extend_from_slice(data);
        // A `</body>` after the one held (if any) becomes the candidate.
        let skip = usize::from(self.at_close).max(searched_from);
        if let Some(at) = rfind_close(&self.held[skip.min(self.held.len())..]) {
            self.at_close = true;
            return self.held.split_to(skip + at).freeze();
        }
        if self.at_close && self.held.len() <= MAX_HELD {
            return Bytes::new();
        }
        // No candidate (or an old one held too long): keep only a tail
        // that may be the start of a `</body>`.
        self.at_close = false;
        let keep = (CLOSE.len() - 1).min(self.held.len());
        let cut = self.held.len() - keep;
        self.held.split_to(cut).freeze()
    }

    /// The rest, with the snippet in place.
    fn finish(&mut self) -> Bytes {
        let snippet = self.snippet.take().unwrap_or_default();
        let mut out = BytesMut::with_capacity(self.held.len() + snippet.len());
        if self.at_close {
            out.extend_from_slice(&snippet);
            out.extend_from_slice(&self.held);
        } else {
            out.extend_from_slice(&self.held);
            out.extend_from_slice(&snippet);
        }
        self.held.clear();
        out.freeze()
    }
}

/// The position of the last `</body>` (any case) in `bytes`.
fn rfind_close(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(CLOSE.len())
        .rposition(|w| w.eq_ignore_ascii_case(CLOSE))
}

impl<B> Body for Injected<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    // Trailers: everything before them first.
                    Err(trailers) => {
                        this.done = true;
                        let _ = trailers;
                        return Poll::Ready(Some(Ok(Frame::data(this.finish()))));
                    }
                },
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Ok(Frame::data(this.finish()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let added = self.snippet.as_ref().map_or(0, |s| s.len()) as u64 + self.held.len() as u64;
        // Upper first: SizeHint refuses a lower bound above the upper one.
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + added);
        }
        hint.set_lower(inner.lower() + added);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};

    async fn run(chunks: &[&str], snippet: &str) -> String {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from(c.to_string()))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let out = Injected::new(body, snippet.to_owned())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn goes_before_the_last_closing_body_in_any_chunking() {
        let page = "<html><BODY>x</Body><!-- </body> in a comment --></BODY></html>";
        let want = "<html><BODY>x</Body><!-- </body> in a comment -->[s]</BODY></html>";
        assert_eq!(run(&[page], "[s]").await, want);
        // Every split into two chunks, and one byte at a time.
        for cut in 0..=page.len() {
            assert_eq!(
                run(&[&page[..cut], &page[cut..]], "[s]").await,
                want,
                "cut {cut}"
            );
        }
        let bytes: Vec<String> = page.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(&refs, "[s]").await, want);
        assert_eq!(run(&["<p>no body"], "[s]").await, "<p>no body[s]");
        assert_eq!(run(&[], "[s]").await, "[s]");
    }

    #[test]
    fn the_size_hint_grows_by_the_snippet() {
        let body = http_body_util::Full::new(Bytes::from_static(b"<body></body>"));
        let injected = Injected::new(body, "[s]".to_owned());
        assert_eq!(injected.size_hint().exact(), Some(16));
    }

    #[tokio::test]
    async fn holds_back_little() {
        // After a `</body>`, more than MAX_HELD of trailing bytes: the
        // candidate is given up, the snippet goes at the end.
        let tail = "x".repeat(MAX_HELD + 10);
        let out = run(&["<body></body>", &tail], "[s]").await;
        assert!(out.ends_with("x[s]"));
        assert_eq!(out.len(), 13 + tail.len() + 3);
    }
}
