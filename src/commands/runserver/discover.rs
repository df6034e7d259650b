//! Discovery: the TCP and Unix sockets an app listens on, whatever told it
//! where.
//!
//! Most apps in the wild neither read `PORT` nor take a passed socket: they
//! hard-code `127.0.0.1:3000` or `/tmp/app.sock`, or read their own
//! variable or file. On Linux the kernel knows: the socket inodes among the
//! open fds of the app's processes (`/proc/PID/fd`), matched against the
//! LISTEN entries of `/proc/PID/net/tcp` and `tcp6` and the listening
//! stream sockets of `/proc/PID/net/unix`, are exactly the app's listening
//! sockets. Elsewhere discovery finds nothing and `--app-addr` names it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::addr::AppAddr;

/// One listening socket of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// Where it listens, as the kernel reports it (`0.0.0.0:3000`, or a
    /// socket path made absolute from its process's directory).
    pub local: AppAddr,
    pub inode: u64,
}

impl Listening {
    /// Where the proxy connects: a wildcard address is reached on loopback.
    pub fn connect_addr(&self) -> AppAddr {
        let local = match &self.local {
            AppAddr::Tcp(addr) => *addr,
            AppAddr::Unix(path) => return AppAddr::Unix(path.clone()),
        };
        let ip = match local.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            ip => ip,
        };
        AppAddr::Tcp(SocketAddr::new(ip, local.port()))
    }
}

/// The listening sockets of process `pid` and all its descendants,
/// except the sockets in `known`. The socket tables are read only when the
/// processes hold a socket not in `known` (they can be large: every
/// connection in TIME_WAIT has a line).
pub fn listening(pid: i32, known: &[u64]) -> Vec<Listening> {
    let pids = tree(pid);
    // Each socket's inode and the process that holds it.
    let mut inodes = HashMap::new();
    for pid in &pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if let Some(inode) = socket_inode(&target.to_string_lossy()) {
                    inodes.entry(inode).or_insert(*pid);
                }
            }
        }
    }
    for inode in known {
        inodes.remove(inode);
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        // The app's own view: the right network namespace, too.
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        found.extend(
            parse_table(&text)
                .into_iter()
                .filter(|l| inodes.contains_key(&l.inode)),
        );
    }
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) {
        for (inode, path) in parse_unix_table(&text) {
            let Some(owner) = inodes.get(&inode) else {
                continue;
            };
            // A relative path was bound from the process's directory.
            let path = if path.is_absolute() {
                path
            } else {
                match std::fs::read_link(format!("/proc/{owner}/cwd")) {
                    Ok(cwd) => cwd.join(path),
                    Err(_) => continue,
                }
            };
            found.push(Listening {
                local: AppAddr::Unix(path),
                inode,
            });
        }
    }
    found.sort_by_key(|l| (l.local.tcp().map_or(u16::MAX, |a| a.port()), l.inode));
    found.dedup();
    found
}

/// The listening stream sockets with a path in `/proc/net/unix`: the
/// inode and the path as bound. Abstract names (`@...`) have no path to
/// connect to and are left out.
fn parse_unix_table(text: &str) -> Vec<(u64, PathBuf)> {
    // __SO_ACCEPTCON: listen() was called.
    const ACCEPTING: u32 = 0x0001_0000;
    const STREAM: &str = "0001";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode Path; the path is
            // the rest of the line and may hold spaces.
            let mut rest = line.trim_start();
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                let (field, tail) = rest.split_once(' ')?;
                fields.push(field);
                rest = tail.trim_start_matches(' ');
            }
            let flags = u32::from_str_radix(fields[3], 16).ok()?;
            if flags & ACCEPTING == 0 || fields[4] != STREAM {
                return None;
            }
            let inode = fields[6].parse().ok()?;
            if rest.is_empty() || rest.starts_with('@') {
                return None;
            }
            Some((inode, Path::new(rest).to_path_buf()))
        })
        .collect()
}

/// `pid` and its descendants, through the kernel's children lists.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() && all.len() < 4096 {
        let parent = all[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !all.contains(&child) {
                    all.push(child);
                }
            }
        }
    }
    all
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The LISTEN entries of `/proc/net/tcp` or `tcp6`.
fn parse_table(text: &str) -> Vec<Listening> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let local = AppAddr::Tcp(parse_addr(fields.get(1)?)?);
            let inode = fields.get(9)?.parse().ok()?;
            Some(Listening { local, inode })
        })
        .collect()
}

/// `0100007F:0BB8` or the 32-digit IPv6 form. The kernel prints each
/// 32-bit word of the address as a number in host byte order.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(text: &str) -> AppAddr {
        AppAddr::Tcp(text.parse().unwrap())
    }

    #[test]
    fn kernel_tables_parse() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0BB9 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1\n";
        let found = parse_table(v4);
        assert_eq!(found.len(), 1, "only LISTEN entries");
        assert_eq!(found[0].local, tcp("127.0.0.1:3000"));
        assert_eq!(found[0].inode, 4242);

        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 78 1 0000000000000000 100 0 0 10 0\n";
        let found = parse_table(v6);
        assert_eq!(found[0].local, tcp("[::1]:8080"));
        assert_eq!(found[1].connect_addr(), tcp("[::1]:80"));
        let any4 = Listening {
            local: tcp("0.0.0.0:3000"),
            inode: 1,
        };
        assert_eq!(any4.connect_addr(), tcp("127.0.0.1:3000"));
    }

    #[test]
    fn finds_its_own_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listening(std::process::id() as i32, &[]);
        assert!(
            found.iter().any(|l| l.local == AppAddr::Tcp(addr)),
            "{addr} not in {found:?}"
        );
    }

    #[test]
    fn the_unix_table_gives_listening_stream_sockets_with_a_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 501 /run/app.sock\n\
0000000000000000: 00000002 00000000 00010000 0001 01 502 tmp/my app.sock\n\
0000000000000000: 00000002 00000000 00010000 0001 01 503 @abstract\n\
0000000000000000: 00000002 00000000 00010000 0005 01 504 /run/seqpacket.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 505 /run/app.sock\n\
0000000000000000: 00000002 00000000 00010000 0001 01 506\n";
        assert_eq!(
            parse_unix_table(table),
            [
                (501, PathBuf::from("/run/app.sock")),
                (502, PathBuf::from("tmp/my app.sock"))
            ]
        );
    }

    #[test]
    fn finds_its_own_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("own.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let found = listening(std::process::id() as i32, &[]);
        assert!(
            found.iter().any(|l| l.local == AppAddr::Unix(path.clone())),
            "{path:?} not in {found:?}"
        );
    }
}
