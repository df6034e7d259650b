//! runserver against what a careless or hostile project can do (#9).

use std::fs;
use std::time::Duration;

use crate::support::fixtures;
use crate::support::runserver::{Start, REBUILD};
use crate::support::{alive, descendants, eventually, mkfifo, rss_kib};

/// A std-only app that starts a long-lived helper process of its own, as
/// apps with workers, watchers or a bundled database do.
const SPAWNER: &str = r#"
use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let helper = std::process::Command::new("sleep").arg("300").spawn().expect("sleep");
    eprintln!("spawner: helper {}", helper.id());
    let port = std::env::var("PORT").expect("PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    for mut stream in listener.incoming().flatten() {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
    }
}
"#;

fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

#[test]
fn sigkill_of_manage_also_ends_what_the_app_started() {
    let (tmp, dir) = fixtures::std_app("hard-spawner", SPAWNER);
    let mut server = Start::new((tmp, dir)).ready();
    let helper = eventually(Duration::from_secs(10), || {
        descendants(server.proc.pid())
            .into_iter()
            .find(|&p| comm(p).as_deref() == Some("sleep"))
    })
    .expect("the app's helper process runs");
    let everything = descendants(server.proc.pid());

    server.proc.signal(libc::SIGKILL);
    server
        .proc
        .wait_exit(Duration::from_secs(5))
        .expect("manage was killed");
    // The app dies with manage (PDEATHSIG); its helper, orphaned, must go
    // too, and so must manage's own reaper once it has done its job.
    let gone = eventually(Duration::from_secs(10), || {
        everything.iter().all(|&p| !alive(p)).then_some(())
    });
    assert!(
        gone.is_some(),
        "still alive after manage was killed: {:?} (the app's helper was {helper})",
        everything
            .iter()
            .filter(|&&p| alive(p))
            .map(|&p| (p, comm(p)))
            .collect::<Vec<_>>()
    );
}

/// A std-only app on `PORT` that answers every request with its version.
const HELLO: &str = r#"
use std::io::{Read, Write};
use std::net::TcpListener;

const VERSION: &str = "v1";

fn main() {
    let port = std::env::var("PORT").expect("PORT");
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    for mut stream in listener.incoming().flatten() {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let body = format!("{VERSION}\n");
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    }
}
"#;

#[test]
fn fifos_devices_and_huge_files_in_the_project_block_nothing() {
    let (tmp, dir) = fixtures::std_app("hard-files", HELLO);
    // Present at start: a FIFO, a symlink to an endless device, a sparse
    // 3 GiB file (no disk used), in the sources and in static/.
    mkfifo(&dir.join("src/pipe"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("src/zero")).unwrap();
    fs::create_dir_all(dir.join("static")).unwrap();
    fs::File::create(dir.join("static/huge.bin"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    mkfifo(&dir.join("static/pipe"));
    let mut server = Start::new((tmp, dir)).ready();
    let version = || {
        crate::support::get(&server.addr, "/")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.text().trim().to_owned())
    };
    assert_eq!(version().as_deref(), Some("v1"));

    // Appearing while it runs: another FIFO and an endless symlink, then a
    // real edit that must still be built and served.
    mkfifo(&server.dir.join("src/pipe2"));
    std::os::unix::fs::symlink("/dev/zero", server.dir.join("src/zero2")).unwrap();
    fs::File::create(server.dir.join("src/huge.bin"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    server.edit("src/main.rs", "\"v1\"", "\"v2\"");
    let served = eventually(REBUILD, || version().filter(|v| v == "v2"));
    assert!(served.is_some(), "the edit was not served: {:?}", version());
    let rss = rss_kib(server.proc.pid());
    assert!(rss < 64 * 1024, "manage holds {rss} KiB");

    // And it still stops promptly.
    server.proc.signal(libc::SIGTERM);
    let status = server.proc.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM did not stop manage cleanly: {status:?}"
    );
}
