//! compose.yaml on the real Docker engine (docker-compose v1, Debian's):
//! nginx, two instances and `migrate` start in the order the file says,
//! serve through nginx on a loopback port, share their SQLite volume, run
//! read-only as uid 10001, and a release replaces the instances one at a
//! time without a failed request; then the same images with PostgreSQL,
//! its password a compose secret. The images are built by the test (the
//! base images locally, see `support::docker`); nginx is Debian's 1.22
//! standing in for the official image, PostgreSQL Debian's 15 with an
//! entrypoint that does what the official image's does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;

use crate::support::deploy::{run, run_ok};
use crate::support::docker::{base_image, boxed_project, docker_ok, Guard};
use crate::support::{eventually, free_port, get, manage, post_form, request};

/// A compose project of the test's own, taken down (containers, network,
/// volumes) when it drops, also after a failed assertion.
struct Compose {
    dir: PathBuf,
    project: String,
    tag: String,
}

impl Compose {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(&self.dir)
            .env("TAG", &self.tag)
            .args(["--project-name", &self.project])
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&run_ok(&mut self.command(args)).stdout).into_owned()
    }

    /// The id of a service's container.
    fn id(&self, service: &str) -> String {
        self.ok(&["ps", "-q", service]).trim().to_owned()
    }

    fn inspect(&self, service: &str, format: &str) -> String {
        docker_ok(&["inspect", "--format", format, &self.id(service)])
    }

    /// `up --detach` with the images the test built; nginx's address on
    /// loopback once it answers the health path.
    fn up(&self, http: u16, within: Duration) -> String {
        self.ok(&["up", "--detach", "--no-build"]);
        let addr = format!("127.0.0.1:{http}");
        let up = eventually(within, || {
            get(&addr, "/healthz").ok().filter(|r| r.status == 200)
        });
        assert!(
            up.is_some(),
            "nginx never answered /healthz within {within:?}:\n{}",
            self.ok(&["logs", "--no-color"])
        );
        addr
    }

    fn healthy(&self, service: &str, within: Duration) {
        let status = eventually(within, || {
            let status = self.inspect(service, "{{.State.Health.Status}}");
            (status == "healthy").then_some(status)
        });
        assert!(
            status.is_some(),
            "{service} not healthy within {within:?}:\n{}",
            self.ok(&["logs", "--no-color", service])
        );
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ =
            run(&mut self.command(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]));
    }
}

/// `docker inspect` times (RFC 3339 with nanoseconds) compare as text.
fn time(compose: &Compose, service: &str, field: &str) -> String {
    compose.inspect(service, &format!("{{{{{field}}}}}"))
}

fn post_note(addr: &str, text: &str) -> u16 {
    post_form(addr, "/notes", &format!("body={text}")).map_or(0, |r| r.status)
}

#[test]
#[allow(clippy::print_stderr)] // the release's figures, for BENCHMARKS.md
fn compose_starts_in_order_releases_without_failures_and_runs_postgres_behind_its_secret() {
    // deploy_container's project: the build stages one test made serve the
    // other from the cache.
    let (_tmp, dir) = boxed_project();
    let http = free_port();
    manage()
        .current_dir(&dir)
        .args(["deploy-config", "--only", "container", "--tls", "off"])
        .args(["--domain", "localhost", "--listen-address", "127.0.0.1"])
        .args(["--http-port", &http.to_string()])
        .args(["--nginx-image", "nginx:1.22-bookworm"])
        // The load below is one client far above the default flood guard.
        .args(["--rate-limit", "1000r/s"])
        .assert()
        .success();
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let mut guard = Guard::new(&dockerfile);
    let tag = format!("compose-test-{}", std::process::id());
    let app = guard.build(&dir, &["--target", "app"]);
    guard.tag(&app.image, &format!("boxed:{tag}"));
    let web = guard.build(&dir, &["--target", "web"]);
    guard.tag(&web.image, &format!("boxed-web:{tag}"));

    let cdir = dir.join("deploy/container");
    fs::copy(cdir.join("app.env.example"), cdir.join("app.env")).unwrap();
    let compose = Compose {
        dir: cdir,
        project: format!("managetest{}", std::process::id()),
        tag: tag.clone(),
    };
    let started = Instant::now();
    let addr = compose.up(http, Duration::from_secs(90));
    eprintln!(
        "compose up: serving through nginx after {:.1?}",
        started.elapsed()
    );

    // The order compose.yaml asks for: migrate finished (exit 0) before an
    // instance started, and nginx started once both were healthy.
    assert_eq!(compose.inspect("migrate", "{{.State.ExitCode}}"), "0");
    let migrated = time(&compose, "migrate", ".State.FinishedAt");
    let web_started = time(&compose, "web", ".State.StartedAt");
    for app in ["app-1", "app-2"] {
        assert!(
            time(&compose, app, ".State.StartedAt") > migrated,
            "{app} before migrate"
        );
        let healthy = compose.inspect(app, "{{(index .State.Health.Log 0).End}}");
        assert!(
            healthy.as_str() < web_started.as_str(),
            "web before {app} was healthy"
        );
        // Read-only, as its numeric user, without capabilities.
        assert_eq!(
            compose.inspect(app, "{{.HostConfig.ReadonlyRootfs}}"),
            "true"
        );
        assert_eq!(compose.inspect(app, "{{.Config.User}}"), "10001:10001");
        assert_eq!(compose.inspect(app, "{{.HostConfig.CapDrop}}"), "[ALL]");
    }
    assert_eq!(
        compose.inspect("web", "{{.HostConfig.ReadonlyRootfs}}"),
        "true"
    );
    // Published on loopback only.
    let ports = compose.inspect("web", "{{json .HostConfig.PortBindings}}");
    assert!(ports.contains("\"HostIp\":\"127.0.0.1\""), "{ports}");

    // Pages and static files through nginx; a note written by one instance
    // is read by both (one SQLite file on the shared volume).
    let page = get(&addr, "/").unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    let css = get(&addr, "/static/css/site.css").unwrap();
    assert_eq!(css.status, 200);
    assert!(css.header("cache-control").is_some(), "{:?}", css.headers);
    assert_eq!(post_note(&addr, "from+compose"), 303);
    for _ in 0..4 {
        let notes = get(&addr, "/notes").unwrap();
        assert!(notes.text().contains("from compose"), "{}", notes.text());
    }
    // Unknown hosts get nothing, as on a machine.
    let other = request(
        &addr,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(other.map_or(true, |r| r.status != 200));

    // A release, as deploy/README.md says: migrate, then each instance
    // recreated and healthy, nginx reloaded; under a steady load of GETs
    // and POSTs through nginx, none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr) = (stop.clone(), addr.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed, mut slowest) = (0u32, Vec::new(), Duration::ZERO);
            let deadline = Instant::now() + Duration::from_secs(240);
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && i < 200_000 {
                i += 1;
                let t = Instant::now();
                let status = if i % 4 == 0 {
                    post_note(&addr, &format!("load{i}"))
                } else {
                    get(&addr, "/").map(|r| r.status).unwrap_or(0)
                };
                slowest = slowest.max(t.elapsed());
                match status {
                    200 | 303 => ok += 1,
                    other => failed.push((i, other)),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (ok, failed, slowest)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    compose.ok(&["run", "--rm", "migrate"]);
    for app in ["app-1", "app-2"] {
        let before = compose.id(app);
        compose.ok(&["up", "--detach", "--no-deps", "--force-recreate", app]);
        assert_ne!(compose.id(app), before, "{app} was not recreated");
        compose.healthy(app, Duration::from_secs(60));
        compose.ok(&["exec", "-T", "web", "nginx", "-s", "reload"]);
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed, slowest) = load.join().unwrap();
    eprintln!(
        "compose release: {ok} requests answered, {} failed, slowest {slowest:.1?}",
        failed.len()
    );
    assert!(ok > 100, "the load hardly ran: {ok}");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the release: {:?}\n{}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(20)],
        compose.ok(&["logs", "--no-color", "--tail", "50"])
    );

    // `docker stop` ends an instance gracefully: exit 0 within the grace.
    let stopping = Instant::now();
    compose.ok(&["stop", "--timeout", "20", "app-1"]);
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(compose.inspect("app-1", "{{.State.ExitCode}}"), "0");
    let project = compose.project.clone();
    drop(compose);
    assert_no_leftovers(&project);

    with_postgres(&dir, &mut guard, &tag, http);
}

/// compose.yaml for `database = "postgres"` with the same images (the app
/// stage differs by one ENV line): `migrate` waits for PostgreSQL to be
/// healthy, both instances use it with the password from the secret file
/// (never in an environment), the database is not published and refuses a
/// wrong password, and the app comes back after PostgreSQL restarts.
fn with_postgres(dir: &Path, guard: &mut Guard, tag: &str, http: u16) {
    manage()
        .current_dir(dir)
        .args(["deploy-config", "--only", "container", "--tls", "off"])
        .args(["--domain", "localhost", "--listen-address", "127.0.0.1"])
        .args(["--http-port", &http.to_string()])
        .args(["--nginx-image", "nginx:1.22-bookworm"])
        .args(["--database", "postgres", "--force"])
        .assert()
        .success();
    let compose_file = dir.join("deploy/container/compose.yaml");
    let postgres_image = fs::read_to_string(&compose_file)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: postgres:").map(str::to_owned))
        .expect("a postgres service in compose.yaml");
    base_image(&format!("postgres:{postgres_image}"));
    let app = guard.build(dir, &["--target", "app"]);
    guard.tag(&app.image, &format!("boxed:{tag}"));

    let cdir = dir.join("deploy/container");
    fs::create_dir_all(cdir.join("secrets")).unwrap();
    // Characters a URL must escape: the app encodes the password itself.
    let password = format!("p@ss:w/rd%{}", std::process::id());
    fs::write(cdir.join("secrets/db-password"), format!("{password}\n")).unwrap();
    let compose = Compose {
        dir: cdir,
        project: format!("managetest{}pg", std::process::id()),
        tag: tag.to_owned(),
    };
    let addr = compose.up(http, Duration::from_secs(120));
    assert_eq!(compose.inspect("migrate", "{{.State.ExitCode}}"), "0");
    assert!(
        time(&compose, "migrate", ".State.StartedAt") > time(&compose, "db", ".State.StartedAt"),
        "migrate before the database"
    );

    // A note written through one instance is read by both, and is in
    // PostgreSQL.
    assert_eq!(post_note(&addr, "from+postgres"), 303);
    for _ in 0..4 {
        let notes = get(&addr, "/notes").unwrap();
        assert!(notes.text().contains("from postgres"), "{}", notes.text());
    }
    let psql = |sql: &str, password: &str| {
        run(&mut compose.command(&[
            "exec",
            "-T",
            "-e",
            &format!("PGPASSWORD={password}"),
            "db",
            "psql",
            "--host",
            "127.0.0.1",
            "--username",
            "boxed",
            "--dbname",
            "boxed",
            "-tAc",
            sql,
        ]))
    };
    let rows = psql("SELECT body FROM notes", &password);
    assert!(rows.status.success(), "{rows:?}");
    assert!(String::from_utf8_lossy(&rows.stdout).contains("from postgres"));
    let wrong = psql("SELECT 1", "wrong");
    assert!(!wrong.status.success(), "a wrong password was taken");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{wrong:?}"
    );

    // The password is in no container's environment, and PostgreSQL is
    // reachable on compose's network only.
    for service in ["app-1", "app-2", "migrate", "db"] {
        let env = compose.inspect(service, "{{json .Config.Env}}");
        assert!(!env.contains(&password), "{service}: {env}");
    }
    let published = compose.inspect("db", "{{json .HostConfig.PortBindings}}");
    assert!(matches!(published.as_str(), "{}" | "null"), "{published}");

    // PostgreSQL restarts: the instances reconnect and the data is there.
    compose.ok(&["restart", "--timeout", "20", "db"]);
    let back = eventually(Duration::from_secs(60), || {
        get(&addr, "/notes")
            .ok()
            .filter(|r| r.status == 200 && r.text().contains("from postgres"))
    });
    assert!(
        back.is_some(),
        "the notes did not come back after PostgreSQL restarted:\n{}",
        compose.ok(&["logs", "--no-color", "--tail", "50"])
    );
    let project = compose.project.clone();
    drop(compose);
    assert_no_leftovers(&project);
}

/// Nothing of the compose project `ours` is left once `down` ran.
fn assert_no_leftovers(ours: &str) {
    let left = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project",
        "-q",
    ]);
    // Other tests' compose projects may run at the same time: only ours
    // (named by this process) must be gone.
    for id in left.lines() {
        let project = docker_ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"com.docker.compose.project\"}}",
            id,
        ]);
        assert_ne!(project, ours, "container {id} left behind");
    }
}
