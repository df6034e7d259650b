//! A PostgreSQL cluster of the test's own: `initdb` and `pg_ctl` on a
//! temporary directory, as `nobody` when the tests run as root (PostgreSQL
//! refuses to run as root), listening on one address and port, and on a
//! Unix socket in that directory. Never the system's service. Dropping it
//! stops the postmaster by its pid and removes the directory.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{alive, eventually};

/// The superuser's password (TCP connections need one: scram-sha-256).
pub const SUPERUSER_PASSWORD: &str = "postgres-test-secret";

/// A PostgreSQL server program: on PATH, or in Debian's versioned
/// directory (`/usr/lib/postgresql/15/bin`), which is not on PATH.
pub fn bin(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

pub struct Postgres {
    dir: tempfile::TempDir,
    /// Commands that put a program in the cluster's network namespace.
    prefix: Vec<String>,
    pub host: String,
    pub port: u16,
    pub pid: i32,
}

/// `setpriv` to `nobody` when running as root; nothing otherwise.
fn unprivileged() -> Vec<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
        .map(String::from)
        .to_vec()
    } else {
        Vec::new()
    }
}

fn chown_nobody(path: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0, "chown");
}

fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Postgres {
    /// A cluster on 127.0.0.1 and a free port.
    pub fn start() -> Postgres {
        Self::start_in(Vec::new(), "127.0.0.1", super::free_port(), "", None, None)
    }

    /// A cluster run through `prefix` (e.g. `ip netns exec db`), listening
    /// on `host:port`, with `conf` appended to `postgresql.conf` and, if
    /// given, a `pg_hba.conf` of its own and a certificate and key for TLS.
    pub fn start_in(
        prefix: Vec<String>,
        host: &str,
        port: u16,
        conf: &str,
        hba: Option<&str>,
        tls: Option<(&Path, &Path)>,
    ) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("manage-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        chown_nobody(dir.path());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
        chown_nobody(&pwfile);
        let mut pg = Postgres {
            dir,
            prefix,
            host: host.to_owned(),
            port,
            pid: 0,
        };
        let data = pg.data();
        check(
            pg.command(bin("initdb").expect("initdb is installed (.ci/run installs postgresql)"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(["-E", "UTF8", "--no-locale", "--no-sync"])
                .output()
                .unwrap(),
            "initdb",
        );
        let mut extra = format!(
            "listen_addresses = '{host}'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
            pg.dir.path().display()
        );
        extra.push_str(conf);
        if let Some((cert, key)) = tls {
            // The key must belong to the server's user, mode 0600.
            for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                let path = pg.dir.path().join(to);
                std::fs::copy(from, &path).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                chown_nobody(&path);
            }
            extra.push_str(&format!(
                "\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
                pg.dir.path().display()
            ));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(extra.as_bytes())
            .unwrap();
        if let Some(hba) = hba {
            // Local socket access for the test's own psql, then the rules.
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("local all all trust\n{hba}"),
            )
            .unwrap();
        }
        let log = pg.dir.path().join("log");
        let started = pg
            .command(bin("pg_ctl").expect("pg_ctl is installed"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        if !started.status.success() {
            panic!(
                "pg_ctl start failed: {}\nlog:\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let pidfile = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
        pg.pid = pidfile.lines().next().unwrap().trim().parse().unwrap();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` as the cluster's user, in its namespace, in its directory.
    fn command(&self, program: PathBuf) -> Command {
        let mut words = self.prefix.clone();
        words.extend(unprivileged());
        let mut cmd = match words.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(self.dir.path()).env_remove("PGPASSWORD");
        cmd
    }

    /// Runs SQL as the superuser over the Unix socket; stdout, unaligned.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        check(self.try_psql(db, sql), "psql")
    }

    pub fn try_psql(&self, db: &str, sql: &str) -> Output {
        self.command(bin("psql").expect("psql is installed"))
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql])
            .output()
            .unwrap()
    }

    /// A login role owning a database of the same name; its URL over TCP.
    pub fn create_app_database(&self, name: &str, password: &str) -> String {
        self.psql(
            "postgres",
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {name}"));
        self.url(name, password, name)
    }

    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{user}:{password}@{}:{}/{db}",
            self.host, self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.pid <= 0 {
            return;
        }
        // SIGINT: PostgreSQL's fast shutdown.
        // SAFETY: kill(2) on the postmaster this test started.
        unsafe {
            libc::kill(self.pid, libc::SIGINT);
        }
        if eventually(Duration::from_secs(20), || (!alive(self.pid)).then_some(())).is_none() {
            // SAFETY: as above.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}
