//! Static files against huge files, slow clients, byte ranges and files
//! that are not regular files (#9).
//!
//! Every server here runs with `--noreload`: the watcher reads what appears
//! under static/ for its own reasons (its hardening is another part of #9),
//! and these tests are about what the proxy does with a request.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fixtures;
use crate::support::runserver::{Session, Start};
use crate::support::{eventually, mkfifo, read_until_closed, request, rss_kib};

/// The send timeout (30 s) as the tests set it (`MANAGE_SEND_TIMEOUT_MS`):
/// longer than the 5 s the stalled clients are watched for.
const SEND_TIMEOUT: Duration = Duration::from_secs(8);
const GIB: u64 = 1 << 30;

/// A std-only app: these tests never reach it, but runserver needs one.
const APP: &str = r#"
use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let port = std::env::var("PORT").expect("PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    for mut stream in listener.incoming().flatten() {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
    }
}
"#;

/// Runs manage on a throwaway project whose static/ holds `small.txt`
/// and whatever `setup` puts there before manage starts.
fn serve(name: &str, setup: impl FnOnce(&Path)) -> Session {
    let (tmp, dir) = fixtures::std_app(name, APP);
    fs::create_dir_all(dir.join("static")).unwrap();
    fs::write(dir.join("static/small.txt"), "small\n").unwrap();
    setup(&dir.join("static"));
    Start::new((tmp, dir))
        .args(&["--noreload"])
        .env(
            "MANAGE_SEND_TIMEOUT_MS",
            &SEND_TIMEOUT.as_millis().to_string(),
        )
        .ready()
}

/// A file of `len` bytes that takes no disk space.
fn sparse(path: &Path, len: u64) {
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// How many of `pid`'s descriptors are open on `file`.
fn open_on(pid: i32, file: &Path) -> usize {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == file))
        .count()
}

/// Sends a GET and returns the stream unread.
fn send_get(addr: &str, path: &str, extra: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    stream
}

/// The status of a GET, or an error when no whole answer came within
/// `timeout`.
fn status_within(addr: &str, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = send_get(addr, path, "");
    stream.set_read_timeout(Some(timeout))?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))
}

fn get_with(addr: &str, path: &str, extra: &str) -> crate::support::Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn a_huge_file_to_clients_that_never_read_costs_little_memory() {
    let server = serve("st-huge", |dir| sparse(&dir.join("big.bin"), GIB));
    let big = fs::canonicalize(server.dir.join("static/big.bin")).unwrap();
    let pid = server.proc.pid();
    let head = request(
        &server.addr,
        "HEAD /static/big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(GIB.to_string().as_str())
    );

    let stalled: Vec<TcpStream> = (0..3)
        .map(|_| send_get(&server.addr, "/static/big.bin", ""))
        .collect();
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        peak = peak.max(rss_kib(pid));
        assert!(
            peak < 64 * 1024,
            "manage's RSS reached {peak} KiB serving 1 GiB to 3 clients that do not read"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("peak RSS of manage with 3 stalled clients: {peak} KiB");
    assert_eq!(
        status_within(&server.addr, "/static/small.txt", Duration::from_secs(5)).unwrap(),
        200,
        "other requests are answered meanwhile"
    );

    // After the send timeout the stalled responses give their files up.
    let closed = eventually(SEND_TIMEOUT + Duration::from_secs(15), || {
        (open_on(pid, &big) == 0).then_some(())
    });
    assert!(
        closed.is_some(),
        "manage still has {} handles on big.bin {:?} after the send timeout",
        open_on(pid, &big),
        SEND_TIMEOUT
    );
    // And their connections are closed: what the kernel buffered drains,
    // then the stream ends instead of waiting for more.
    for mut client in stalled {
        if let Err(e) = read_until_closed(&mut client, GIB / 4, Duration::from_secs(60)) {
            panic!("a client that stopped reading still holds its connection after the send timeout: {e}");
        }
    }
}

#[test]
fn a_file_that_shrinks_while_sent_ends_the_response() {
    let server = serve("st-shrink", |dir| sparse(&dir.join("big.bin"), GIB));
    let mut client = send_get(&server.addr, "/static/big.bin", "");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let got = client.read(&mut buf).unwrap() as u64;
    assert!(
        String::from_utf8_lossy(&buf[..12]).starts_with("HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..64])
    );
    fs::OpenOptions::new()
        .write(true)
        .open(server.dir.join("static/big.bin"))
        .unwrap()
        .set_len(0)
        .unwrap();

    // The response ends soon (within 10 s) and short of the whole file.
    if let Err(e) = read_until_closed(&mut client, GIB - got, Duration::from_secs(10)) {
        panic!("the response neither went on nor ended after the file was emptied: {e}");
    }
}

#[test]
fn byte_ranges_answer_206_and_416() {
    let content: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let server = serve("st-ranges", |dir| {
        fs::write(dir.join("data.bin"), &content).unwrap()
    });
    let addr = &server.addr;
    let path = "/static/data.bin";

    let whole = get_with(addr, path, "");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, content);
    let etag = whole.header("etag").unwrap().to_owned();
    let modified = whole.header("last-modified").unwrap().to_owned();

    for (range, span) in [
        ("bytes=10-19", 10..20),
        ("bytes=990-", 990..1000),
        ("bytes=-5", 995..1000),
        ("bytes=995-5000", 995..1000),
        ("bytes=0-0", 0..1),
    ] {
        let r = get_with(addr, path, &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {}-{}/1000", span.start, span.end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(span.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.body, content[span], "{range}");
    }
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let r = get_with(addr, path, &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    // Several ranges, another unit, bad syntax: the whole file.
    for range in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1"] {
        let r = get_with(addr, path, &format!("Range: {range}\r\n"));
        assert_eq!((r.status, r.body.len()), (200, 1000), "{range}");
    }

    // If-Range: the range only while the validator still matches.
    let if_range = |value: &str| {
        let r = get_with(
            addr,
            path,
            &format!("Range: bytes=10-19\r\nIf-Range: {value}\r\n"),
        );
        (r.status, r.body.len())
    };
    assert_eq!(if_range(&etag), (206, 10));
    assert_eq!(if_range(&modified), (206, 10));
    assert_eq!(if_range("\"stale\""), (200, 1000));
    assert_eq!(if_range(&format!("W/{etag}")), (200, 1000));
    assert_eq!(if_range("Thu, 01 Jan 1970 00:00:00 GMT"), (200, 1000));

    // The cache validators come first.
    let r = get_with(
        addr,
        path,
        &format!("Range: bytes=10-19\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 304);

    // HEAD describes the whole file as GET does; Range is for GET only.
    for extra in ["", "Range: bytes=10-19\r\n"] {
        let head = request(
            addr,
            &format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
        )
        .unwrap();
        assert_eq!(head.status, 200, "{extra}");
        assert_eq!(head.header("content-length"), Some("1000"), "{extra}");
        assert_eq!(head.header("accept-ranges"), Some("bytes"), "{extra}");
        assert_eq!(head.header("etag"), Some(etag.as_str()), "{extra}");
        assert!(head.body.is_empty());
    }
}

/// Swaps two names atomically, so a reader sees one file or the other.
fn exchange(a: &Path, b: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

#[test]
fn a_fifo_in_static_answers_404_at_once() {
    let server = serve("st-fifo", |dir| {
        mkfifo(&dir.join("pipe"));
        mkfifo(&dir.join("flip"));
        fs::write(dir.join("flop"), "a regular file\n").unwrap();
    });
    let addr = server.addr.clone();
    let quick = Duration::from_secs(3);
    assert_eq!(status_within(&addr, "/static/pipe", quick).unwrap(), 404);

    // A path that turns into a FIFO between the check and the open must
    // not hang either: keep swapping a FIFO and a file under the same name.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (flip, flop): (PathBuf, PathBuf) = (
            server.dir.join("static/flip"),
            server.dir.join("static/flop"),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                exchange(&flip, &flop);
            }
        })
    };
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..50 {
                    seen.push(status_within(&addr, "/static/flip", quick).map_err(|e| e.kind()));
                }
                seen
            })
        })
        .collect();
    let seen: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let hung = seen.iter().filter(|s| s.is_err()).count();
    assert_eq!(
        hung,
        0,
        "{hung} of {} requests got no answer within {quick:?}: {seen:?}",
        seen.len()
    );
    assert!(seen.iter().all(|s| matches!(s, Ok(200 | 404))), "{seen:?}");

    assert_eq!(
        status_within(&addr, "/static/small.txt", quick).unwrap(),
        200
    );
    assert_eq!(status_within(&addr, "/static/pipe", quick).unwrap(), 404);
}
