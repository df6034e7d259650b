//! runserver against what a careless or hostile project can do (#9).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::devserver::DevServer;
use crate::support::{descendants, eventually};

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

/// A throwaway std-only project with `main` as its src/main.rs.
fn project(name: &str, main: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n"
        ),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), main).unwrap();
    (tmp, dir)
}

fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !matches!(
                stat.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next()),
                Some("Z" | "X")
            )
        })
        .unwrap_or(false)
}

#[test]
fn sigkill_of_manage_also_ends_what_the_app_started() {
    let (tmp, dir) = project("hard-spawner", SPAWNER);
    let mut server = DevServer::start_in(tmp, dir, &[], "Built in");
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
