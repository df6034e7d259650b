//! Connections whose client stops taking data.
//!
//! hyper writes a response until the socket's buffer is full and then
//! waits for the client, with no limit: a client that requests a large
//! file and never reads would hold its connection (a file descriptor and
//! hyper's buffers) for as long as it likes, and a few hundred such
//! clients would use up manage's descriptors. [`WriteTimeout`] fails a
//! write that makes no progress for [`send_timeout`], so hyper closes the
//! connection (#9). Reads are untouched: an idle keep-alive connection or
//! a live-reload stream waiting for news writes nothing and is not timed.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a client may take no data before its connection is closed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// [`SEND_TIMEOUT`], or what the hidden `MANAGE_SEND_TIMEOUT_MS` says
/// (tests of the timeout take a second instead of half a minute).
pub fn send_timeout() -> Duration {
    static LIMIT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("MANAGE_SEND_TIMEOUT_MS")
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map_or(SEND_TIMEOUT, Duration::from_millis)
    })
}

pub struct WriteTimeout<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first waits; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// What a write that returned `poll` means: progress disarms the
    /// timer, waiting arms it, and waiting past the limit is an error.
    fn judge<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no data for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.judge(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.judge(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.judge(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.judge(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_past_the_limit_fails_and_progress_resets_it() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut conn = WriteTimeout::new(near, Duration::from_secs(30));
        conn.write_all(&[0; 16]).await.unwrap();
        // Full: the next write waits. Read some back after 20 s: progress.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let mut buf = [0; 16];
            far.read_exact(&mut buf).await.unwrap();
            far
        });
        conn.write_all(&[1; 16]).await.unwrap();
        let _far = reader.await.unwrap();
        // Nobody reads any more: 30 s later the write fails.
        let started = tokio::time::Instant::now();
        let err = conn.write_all(&[2; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
