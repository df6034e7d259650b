//! A running `manage runserver` for the runserver, devproxy and browser
//! tests: a generated project (or the std-only echo app) served on the
//! loopback port the system gives runserver (it binds port 0).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{eventually, generate, get, manage, serving_addr, shared_target_dir, Running};

/// The first build in a test run compiles hyper and tokio; later ones wait
/// for cargo's lock while other tests build.
pub const FIRST_BUILD: Duration = Duration::from_secs(600);
pub const REBUILD: Duration = Duration::from_secs(180);

pub struct DevServer {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub addr: String,
    pub proc: Running,
}

impl DevServer {
    /// runserver in a fresh scaffold. Its migrations are applied first
    /// (`--migrate`): pages of a project with unapplied migrations carry
    /// runserver's banner about them, which only the database tests are
    /// about (they use [`DevServer::start_in`]).
    pub fn start(name: &str, extra: &[&str]) -> DevServer {
        let (tmp, dir) = generate(name);
        let args: Vec<&str> = std::iter::once("--migrate")
            .chain(extra.iter().copied())
            .collect();
        Self::start_in(tmp, dir, &args, "Built in")
    }

    /// Starts runserver in an existing project and waits for `ready_line`.
    pub fn start_in(
        tmp: tempfile::TempDir,
        dir: PathBuf,
        extra: &[&str],
        ready_line: &str,
    ) -> DevServer {
        let mut cmd = manage();
        cmd.current_dir(&dir)
            .env("CARGO_TARGET_DIR", shared_target_dir())
            .arg("runserver")
            .arg("127.0.0.1:0")
            .args(extra);
        let proc = Running::start(cmd);
        let addr = serving_addr(&proc);
        proc.wait_for_line(ready_line, FIRST_BUILD);
        DevServer {
            _tmp: tmp,
            dir,
            addr,
            proc,
        }
    }

    /// Stops runserver as Ctrl-C does and hands the project back, for
    /// another start in the same directory.
    pub fn stop(self) -> (tempfile::TempDir, PathBuf) {
        let DevServer {
            _tmp,
            dir,
            mut proc,
            ..
        } = self;
        proc.signal(libc::SIGTERM);
        proc.wait_exit(Duration::from_secs(30))
            .expect("runserver exits on SIGTERM");
        (_tmp, dir)
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.dir.join(rel);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel} has no {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// A Rust edit that changes every page's title (a rebuild, not a
    /// template edit): the `project` global in the scaffold's src/pages.rs
    /// goes from `from` (`None`: the package name) to `to`, and the welcome
    /// page's title becomes "`to` is running".
    pub fn rename_in_code(&self, from: Option<&str>, to: &str) {
        let global = |name: Option<&str>| match name {
            None => "env.add_global(\"project\", env!(\"CARGO_PKG_NAME\"))".to_owned(),
            Some(name) => format!("env.add_global(\"project\", {name:?})"),
        };
        self.edit("src/pages.rs", &global(from), &global(Some(to)));
    }

    /// An edit of the welcome page's template (templates/welcome.html):
    /// its title goes from `from` to `to`.
    pub fn retitle_template(&self, from: &str, to: &str) {
        let block = |title: &str| format!("{{% block title %}}{title}{{% endblock %}}");
        self.edit("templates/welcome.html", &block(from), &block(to));
    }

    pub fn title(&self) -> Option<String> {
        let response = get(&self.addr, "/").ok()?;
        (response.status == 200).then(|| title_of(&response.text()))
    }

    pub fn wait_for_title(&self, title: &str) {
        let seen = eventually(REBUILD, || self.title().filter(|t| t == title));
        assert!(
            seen.is_some(),
            "never served title {title:?}; last: {:?}",
            self.title()
        );
    }
}

fn title_of(html: &str) -> String {
    html.split("<title>")
        .nth(1)
        .and_then(|rest| rest.split("</title>").next())
        .unwrap_or("")
        .to_owned()
}

/// A copy of the std-only echo app (not a generated project) in a temp dir.
pub fn echo_app() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("echo-app");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo-app");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::copy(fixture.join("Cargo.toml"), dir.join("Cargo.toml")).unwrap();
    fs::copy(fixture.join("src/main.rs"), dir.join("src/main.rs")).unwrap();
    (tmp, dir)
}

pub fn start_echo() -> DevServer {
    let (tmp, dir) = echo_app();
    DevServer::start_in(tmp, dir, &[], "Built in")
}
