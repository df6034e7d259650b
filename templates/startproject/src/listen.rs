//! The socket to serve on: inherited from systemd, or bound from HOST/PORT.

/// The listening socket, and whether it was inherited (`true`).
pub fn listener() -> std::io::Result<(std::net::TcpListener, bool)> {
    let inherited = inherited_listener()?;
    let was_inherited = inherited.is_some();
    let listener = match inherited {
        Some(listener) => listener,
        // systemd started this process (it sets INVOCATION_ID) but passed
        // no socket: the socket unit is not running, or was changed and not
        // restarted. Falling back to 127.0.0.1:8000 would serve nobody, or
        // fail on a port another instance holds.
        None if std::env::var_os("INVOCATION_ID").is_some()
            && std::env::var_os("PORT").is_none() =>
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "started by systemd without a socket (no LISTEN_FDS) and without PORT: \
                 start the instance through its socket unit (systemctl restart NAME@PORT.socket), \
                 or set PORT in the unit",
            ));
        }
        None => {
            let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
            let port = match std::env::var("PORT") {
                Ok(port) => port.parse::<u16>().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("PORT must be a number from 0 to 65535, not `{port}`"),
                    )
                })?,
                Err(_) => 8000,
            };
            std::net::TcpListener::bind((host.as_str(), port))?
        }
    };
    listener.set_nonblocking(true)?;
    Ok((listener, was_inherited))
}

/// systemd socket activation: `LISTEN_FDS` sockets start at fd 3.
/// `LISTEN_PID`, when set, must be this process (systemd sets it; `systemfd
/// --no-pid` does not).
#[cfg(unix)]
fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;

    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return Ok(None);
    }
    if count.parse::<u32>().unwrap_or(0) < 1 {
        return Ok(None);
    }
    // SAFETY: under socket activation fd 3 is the first passed socket, and
    // nothing else in this process has opened or claimed it yet.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    if let Err(err) = listener.local_addr() {
        // Not a socket: don't take ownership of whatever fd 3 is.
        std::mem::forget(listener);
        return Err(std::io::Error::new(
            err.kind(),
            format!("LISTEN_FDS is set but fd 3 is not a listening socket: {err}"),
        ));
    }
    Ok(Some(listener))
}

#[cfg(not(unix))]
fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    Ok(None)
}
