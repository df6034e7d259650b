//! `NAME healthcheck`: asks the server this environment starts whether it
//! is healthy, and exits 0 (yes) or 1 (no, with a one-line reason).
//!
//! It is the container image's HEALTHCHECK, so the image needs no curl: it
//! connects where `serve` binds (HOST and PORT; loopback when HOST is a
//! wildcard such as 0.0.0.0) and GETs HEALTH_PATH (default `/healthz`),
//! all within 3 seconds, with nothing but the standard library.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The whole check: connecting, asking, reading the status line.
const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run() -> Result<(), String> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = match std::env::var("PORT") {
        Ok(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("PORT must be a port number, not `{port}`")),
            Ok(port) => port,
        },
        Err(_) => 8000,
    };
    let path = std::env::var("HEALTH_PATH").unwrap_or_else(|_| "/healthz".to_owned());
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(format!(
            "HEALTH_PATH must be a path such as /healthz, not `{path}`"
        ));
    }
    let deadline = Instant::now() + TIMEOUT;
    let addr = address(&host, port)?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {}-healthcheck\r\n\
         Connection: close\r\n\r\n",
        env!("CARGO_PKG_NAME")
    );
    stream
        .set_write_timeout(Some(left(deadline)?))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|err| format!("cannot send to {addr}: {err}"))?;
    let status = status_line(&mut stream, deadline)
        .map_err(|err| format!("no answer from http://{addr}{path}: {err}"))?;
    match status.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("http://{addr}{path} answered `{status}`")),
    }
}

/// Where the server listens: HOST, or loopback for a wildcard address.
fn address(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        let ip = if ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            ip
        };
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve HOST `{host}`: {err}"))?
        .next()
        .ok_or_else(|| format!("HOST `{host}` has no address"))
}

/// The time left until `deadline`, or the error of having none.
fn left(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(format!("no answer within {TIMEOUT:?}"))
    } else {
        Ok(left)
    }
}

/// Reads the response's first line (at most 1 KiB) before `deadline`.
fn status_line(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        if head.len() > 1024 {
            return Err("the status line is longer than 1 KiB".to_owned());
        }
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|err| err.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => return Err("the connection closed before a status line".to_owned()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no status line within {TIMEOUT:?}"));
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).into_owned())
}
