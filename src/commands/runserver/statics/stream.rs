//! A static file as a response body: read a chunk ahead of the client by a
//! task of its own, which gives up (and closes the file) when the client
//! takes nothing for a while or the file shrinks.

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use tokio::fs::File;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;

use super::super::body::{BoxError, ProxyBody};
use super::{send_timeout, CHUNK};

/// The bytes `span` of `file`, read from disk a chunk at a time.
///
/// A task of its own reads ahead by one chunk into a channel of one, so a
/// response holds at most a few chunks besides hyper's write buffer, however
/// large the file (#9). The reader, not the body, owns the file: hyper
/// stops polling a body whose client has stopped reading, so only the
/// reader can notice that no chunk was taken for [`send_timeout`], and then
/// it closes the file. A reader that ends before the last byte (that
/// timeout, a read error, a file that shrank) makes the body fail, so the
/// connection is aborted instead of waiting for bytes that never come.
pub(super) fn file_body(file: File, span: Range<u64>) -> ProxyBody {
    let (tx, rx) = mpsc::channel(1);
    let remaining = span.end - span.start;
    tokio::spawn(read_chunks(file, span, tx));
    FileBody { rx, remaining }.boxed()
}

async fn read_chunks(mut file: File, span: Range<u64>, tx: mpsc::Sender<io::Result<Bytes>>) {
    if let Err(err) = file.seek(SeekFrom::Start(span.start)).await {
        let _ = tx.send(Err(err)).await;
        return;
    }
    let mut file = file.take(span.end - span.start);
    loop {
        let mut chunk = BytesMut::with_capacity(CHUNK);
        let read = match file.read_buf(&mut chunk).await {
            Ok(0) if file.limit() == 0 => return,
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            )),
            Ok(_) => Ok(chunk.freeze()),
            Err(err) => Err(err),
        };
        let failed = read.is_err();
        match tokio::time::timeout(send_timeout(), tx.send(read)).await {
            // Sent, and more to read.
            Ok(Ok(())) if !failed => {}
            // The error is sent, the client went away, or it stopped
            // reading: either way the file closes here.
            _ => return,
        }
    }
}

pub(super) struct FileBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(Ok(chunk)) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(err)) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(err.into())))
            }
            None => {
                self.remaining = 0;
                Poll::Ready(Some(Err(
                    "the client took no data for too long; the file was closed".into(),
                )))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
