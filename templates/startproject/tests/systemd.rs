//! Under systemd: `READY=1` on `NOTIFY_SOCKET` once the server can serve,
//! then `WATCHDOG=1` at half of `WATCHDOG_USEC`. A datagram socket here
//! stands in for systemd's.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use support::{BIN, TempDir, get, start};

#[test]
fn ready_once_serving_then_the_watchdog_is_fed() {
    let dir = TempDir::new();
    let path = dir.0.join("notify.sock");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd names the process the watchdog is for (WATCHDOG_PID): the
    // shell's pid, which `exec` hands to the app.
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "export WATCHDOG_PID=$$; exec \"$0\"", BIN])
        .current_dir(&dir.0)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env_remove("LISTEN_FDS")
        .env_remove("DATABASE_URL")
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let server = start(cmd);

    // Watchdog pings may come first: the runtime runs before the database
    // answers.
    let mut buf = [0u8; 256];
    loop {
        let n = systemd.recv(&mut buf).expect("READY=1 within 10 s");
        match &buf[..n] {
            b"READY=1\n" => break,
            b"WATCHDOG=1\n" => {}
            other => panic!("unexpected {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert!(get(&server.addr, "/healthz").starts_with("HTTP/1.1 200"));

    // Every 100 ms (half of WATCHDOG_USEC), for as long as it runs.
    for _ in 0..3 {
        let n = systemd.recv(&mut buf).expect("WATCHDOG=1 within 10 s");
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    }
}
