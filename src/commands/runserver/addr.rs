//! Addresses: the public one, in Django's forms, and where the proxy
//! reaches an app (a TCP address, or the path of a Unix socket:
//! `unix:/run/app.sock`), with the connections to it.
//!
//! Both kinds go through one [`Connector`], so the pool, the drain and the
//! readiness polls treat them alike.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{bail, Result};
use hyper::http::uri::Authority;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::error::hinted;

/// Django's forms: `8000`, `0.0.0.0:8000`, `[::1]:8000`, `localhost:8000`.
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let hint = "use a port (`8080`), an address and port (`0.0.0.0:8000`), or an IPv6 address in brackets (`[::1]:8000`)";
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        if port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            if let Some(addr) = text.to_socket_addrs().ok().and_then(|mut a| a.next()) {
                return Ok(addr);
            }
            return Err(hinted(format!("cannot resolve host `{host}`"), hint));
        }
    }
    Err(hinted(
        format!("`{text}` is not a valid port or address:port"),
        hint,
    ))
}

/// An address as a URL shows it (`[::1]:8000`).
pub fn display_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

/// Where an app takes connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAddr {
    Tcp(SocketAddr),
    /// An absolute path: relative ones are resolved where they are read.
    Unix(PathBuf),
}

/// The longest path a Unix socket address holds (`sun_path`, with its NUL).
const SUN_PATH: usize = 107;

impl AppAddr {
    /// `[ADDR:]PORT`, or `unix:PATH` with PATH relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<AppAddr> {
        let Some(path) = text.strip_prefix("unix:") else {
            return Ok(AppAddr::Tcp(parse_addr(text)?));
        };
        if path.is_empty() {
            bail!("`unix:` needs the socket's path, as in `unix:/run/app.sock`");
        }
        if path.starts_with('@') {
            bail!(
                "abstract Unix sockets (`@name`) are not supported; give the app a socket \
                 path such as `unix:/tmp/app.sock`"
            );
        }
        if path.contains('\0') {
            bail!("a socket path cannot contain a NUL byte");
        }
        let path = base.join(path);
        if path.as_os_str().len() > SUN_PATH {
            bail!(
                "the socket path `{}` is {} bytes long; the kernel takes at most {SUN_PATH}",
                path.display(),
                path.as_os_str().len()
            );
        }
        Ok(AppAddr::Unix(path))
    }

    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            AppAddr::Tcp(addr) => Some(*addr),
            AppAddr::Unix(_) => None,
        }
    }

    /// A fresh connection to the app.
    pub async fn connect(&self) -> io::Result<Stream> {
        match self {
            AppAddr::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            AppAddr::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// What removes the socket file a stopped app on a Unix socket left
    /// ([`remove_stale_socket`]), to run on a blocking thread.
    pub fn sweep(&self) -> impl FnOnce() + Send + 'static {
        let path = match self {
            AppAddr::Unix(path) => Some(path.clone()),
            AppAddr::Tcp(_) => None,
        };
        move || {
            if let Some(path) = path {
                remove_stale_socket(&path);
            }
        }
    }

    /// The authority of a request URI sent to it. A Unix socket has no
    /// host; the request keeps the Host header the browser sent.
    pub fn authority(&self) -> Authority {
        match self {
            AppAddr::Tcp(addr) => addr
                .to_string()
                .parse()
                .expect("a socket address is a valid authority"),
            AppAddr::Unix(_) => Authority::from_static("localhost"),
        }
    }
}

impl fmt::Display for AppAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppAddr::Tcp(addr) => f.write_str(&display_addr(*addr)),
            AppAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for AppAddr {
    fn from(addr: SocketAddr) -> AppAddr {
        AppAddr::Tcp(addr)
    }
}

/// Removes the socket file at `path` when nothing listens on it any more
/// (connecting is refused): what an app that stopped left behind. A file
/// that is not a socket, or a socket something answers on, stays.
pub fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.file_type().is_socket() {
        return;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
}

/// A connection to an app, over TCP or a Unix socket.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Tcp(s) => s.connected(),
            Stream::Unix(s) => s.connected(),
        }
    }
}

/// The connection pool's connector: every URI goes to the one app.
#[derive(Clone)]
pub struct Connector(Arc<AppAddr>);

impl Connector {
    pub fn new(addr: AppAddr) -> Connector {
        Connector(Arc::new(addr))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let addr = self.0.clone();
        Box::pin(async move { addr.connect().await.map(TokioIo::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_addresses_and_socket_paths() {
        let base = Path::new("/srv/app");
        assert_eq!(
            AppAddr::parse("3000", base).unwrap(),
            AppAddr::Tcp("127.0.0.1:3000".parse().unwrap())
        );
        assert_eq!(
            AppAddr::parse("unix:/run/app.sock", base).unwrap(),
            AppAddr::Unix("/run/app.sock".into())
        );
        assert_eq!(
            AppAddr::parse("unix:tmp/app.sock", base).unwrap(),
            AppAddr::Unix("/srv/app/tmp/app.sock".into())
        );
        assert_eq!(
            AppAddr::parse("unix:/run/app.sock", base)
                .unwrap()
                .to_string(),
            "unix:/run/app.sock"
        );
        for bad in ["unix:", "unix:@name", "unix:/a\0b"] {
            assert!(AppAddr::parse(bad, base).is_err(), "{bad:?}");
        }
        let long = format!("unix:/{}", "x".repeat(200));
        let err = AppAddr::parse(&long, base).unwrap_err().to_string();
        assert!(err.contains("at most 107"), "{err}");
    }

    #[test]
    fn only_a_socket_nothing_listens_on_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        remove_stale_socket(&live);
        assert!(live.exists(), "a socket with a listener stays");
        drop(listener);
        remove_stale_socket(&live);
        assert!(!live.exists(), "a socket nothing listens on goes");
        let file = dir.path().join("plain");
        std::fs::write(&file, "data").unwrap();
        remove_stale_socket(&file);
        assert!(file.exists(), "a file that is not a socket stays");
        remove_stale_socket(&dir.path().join("missing"));
    }

    #[tokio::test]
    async fn connects_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let addr = AppAddr::Unix(path);
        let (client, server) = tokio::join!(addr.connect(), listener.accept());
        assert!(matches!(client.unwrap(), Stream::Unix(_)));
        server.unwrap();
    }
}
