//! What the deploy-config tests drive: the validators (nginx, gixy,
//! systemd-analyze, shellcheck, nft, sslyze), test certificates, and
//! network namespaces standing for machines.
//!
//! A missing tool fails the test with the command that installs it:
//! `.ci/run` installs them all, so a skip would only hide a broken CI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::prelude::*;

use super::{generate, manage};

/// An executable on PATH (or in /usr/sbin, /sbin), or a failed test.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is missing; `.ci/run` installs it (apt-get install {package})")
        })
}

/// The virtualenv `.ci/run` makes with gixy-ng and sslyze.
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("MANAGE_TEST_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/manage-ci-venv"))
        })
        .expect("MANAGE_TEST_VENV or HOME is set");
    let exe = venv.join("bin").join(name);
    assert!(
        exe.is_file(),
        "`{}` is missing; `.ci/run` creates the virtualenv (pip install gixy-ng sslyze), or set MANAGE_TEST_VENV",
        exe.display()
    );
    exe
}

/// checkov's checks of one `framework` (`kubernetes`, `dockerfile`) on
/// `file`: `Ok(skipped)` when none failed and more than `least_passed`
/// passed (so a file checkov did not understand never passes).
pub fn checkov(framework: &str, file: &Path, least_passed: usize) -> Result<usize, String> {
    let out = run(Command::new(venv_tool("checkov"))
        .args(["--framework", framework, "--compact", "--quiet"])
        // No network here: no policy metadata from the vendor's API.
        .arg("--skip-download")
        .arg("-f")
        .arg(file));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let count = |what: &str| -> Option<usize> {
        let at = text.find(what)? + what.len();
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    match (
        out.status.success(),
        count("Failed checks: "),
        count("Skipped checks: "),
    ) {
        (true, Some(0), Some(skipped)) if count("Passed checks: ") > Some(least_passed) => {
            Ok(skipped)
        }
        _ => Err(format!(
            "{}\n{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// Runs a command to completion, capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and fails the test, showing its output, unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A local CA and a server certificate for `localhost` and 127.0.0.1,
/// with the key usages sslyze requires of a chain.
pub struct Certs {
    pub ca: PathBuf,
    pub chain: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = tool("openssl", "openssl");
        let ossl = |args: &[&str]| {
            run_ok(Command::new(&openssl).current_dir(dir).args(args));
        };
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=manage test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=hash",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n\
             basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        ossl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ]);
        ossl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-set_serial",
            "4242",
            "-out",
            "srv.pem",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "ext.cnf",
        ]);
        let chain = [
            std::fs::read(dir.join("srv.pem")).unwrap(),
            std::fs::read(dir.join("ca.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join("chain.pem"), chain).unwrap();
        Certs {
            ca: dir.join("ca.pem"),
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Network namespaces and the links between them, removed (by name) on
/// drop. `lan` holds a bridge; every other namespace and the root
/// namespace get a veth pair onto it, so all of them share one subnet.
pub struct Netns {
    prefix: String,
    names: Vec<String>,
    root_link: Option<String>,
}

impl Netns {
    pub fn new() -> Netns {
        Netns::with_prefix("mg")
    }

    /// Namespaces named `{prefix}{pid}...`: a test of its own picks a
    /// prefix of its own, so tests running at once never share a name
    /// (interface names take it too: keep it to 2 or 3 characters).
    pub fn with_prefix(prefix: &str) -> Netns {
        let prefix = format!("{prefix}{}", std::process::id());
        let mut ns = Netns {
            names: Vec::new(),
            prefix,
            root_link: None,
        };
        let lan = ns.name("lan");
        ns.ip(&["netns", "add", &lan]);
        ns.names.push(lan.clone());
        ns.exec_ok(&lan, &["ip", "link", "add", "br0", "type", "bridge"]);
        ns.exec_ok(&lan, &["ip", "link", "set", "br0", "up"]);
        ns
    }

    pub fn name(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    fn ip(&self, args: &[&str]) {
        run_ok(Command::new(tool("ip", "iproute2")).args(args));
    }

    /// Adds namespace `short` with `address/24` on a link to the bridge.
    pub fn add_machine(&mut self, short: &str, address: &str) -> String {
        let ns = self.name(short);
        let lan = self.name("lan");
        self.ip(&["netns", "add", &ns]);
        self.names.push(ns.clone());
        let (inner, outer) = (
            format!("{}{short}", self.prefix),
            format!("{}{short}b", self.prefix),
        );
        self.ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ]);
        self.ip(&["link", "set", &inner, "netns", &ns]);
        self.ip(&["link", "set", &outer, "netns", &lan]);
        self.exec_ok(&lan, &["ip", "link", "set", &outer, "master", "br0"]);
        self.exec_ok(&lan, &["ip", "link", "set", &outer, "up"]);
        self.exec_ok(
            &ns,
            &["ip", "addr", "add", &format!("{address}/24"), "dev", &inner],
        );
        self.exec_ok(&ns, &["ip", "link", "set", &inner, "up"]);
        self.exec_ok(&ns, &["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Gives the root namespace `address/24` on a link to the bridge.
    pub fn connect_root(&mut self, address: &str) {
        let lan = self.name("lan");
        let (inner, outer) = (format!("{}r", self.prefix), format!("{}rb", self.prefix));
        self.ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ]);
        self.root_link = Some(inner.clone());
        self.ip(&["link", "set", &outer, "netns", &lan]);
        self.exec_ok(&lan, &["ip", "link", "set", &outer, "master", "br0"]);
        self.exec_ok(&lan, &["ip", "link", "set", &outer, "up"]);
        self.ip(&["addr", "add", &format!("{address}/24"), "dev", &inner]);
        self.ip(&["link", "set", &inner, "up"]);
    }

    /// A command that runs inside namespace `ns`.
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(tool("ip", "iproute2"));
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        run(self.command(ns, args[0]).args(&args[1..]))
    }

    pub fn exec_ok(&self, ns: &str, args: &[&str]) -> Output {
        run_ok(self.command(ns, args[0]).args(&args[1..]))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ip = tool("ip", "iproute2");
        if let Some(link) = &self.root_link {
            let _ = Command::new(&ip).args(["link", "del", link]).output();
        }
        for ns in self.names.iter().rev() {
            let _ = Command::new(&ip).args(["netns", "del", ns]).output();
        }
    }
}

/// A generated project plus a scratch directory for nginx's pid, logs,
/// temp files, static root and certificates.
pub struct Site {
    _tmp: tempfile::TempDir,
    pub name: String,
    pub project: PathBuf,
    pub scratch: PathBuf,
}

pub fn site(name: &str) -> Site {
    let (tmp, project) = generate(name);
    let scratch = tmp.path().join("scratch");
    for dir in ["logs", "tmp", "static", "le/localhost", "bin"] {
        fs::create_dir_all(scratch.join(dir)).unwrap();
    }
    // An executable for the units' ExecStart that systemd-analyze can find,
    // outside the system's binary directories deploy-config refuses.
    fs::copy("/usr/bin/true", scratch.join("bin/app")).unwrap();
    Site {
        _tmp: tmp,
        name: name.into(),
        project,
        scratch,
    }
}

impl Site {
    /// The advanced settings that point nginx into the scratch directory.
    pub fn test_args(&self, http: u16, https: u16) -> Vec<String> {
        let t = |p: &str| self.scratch.join(p).display().to_string();
        [
            "--domain",
            "localhost",
            "--http-port",
            &http.to_string(),
            "--https-port",
            &https.to_string(),
            "--nginx-user",
            "root",
            "--nginx-pid",
            &t("nginx.pid"),
            "--nginx-log-dir",
            &t("logs"),
            "--nginx-temp-dir",
            &t("tmp"),
            "--static-root",
            &t("static"),
            "--letsencrypt-dir",
            &t("le"),
            "--binary",
            &t("bin/app"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn deploy(&self, out: &Path, args: &[String]) {
        manage()
            .current_dir(&self.project)
            .args(["deploy-config", "--out"])
            .arg(out)
            .args(args)
            .assert()
            .success();
    }

    pub fn certs(&self) -> Certs {
        let certs = Certs::make(&self.scratch.join("certs"));
        // letsencrypt mode reads certbot's layout.
        let le = self.scratch.join("le/localhost");
        fs::copy(&certs.chain, le.join("fullchain.pem")).unwrap();
        fs::copy(&certs.key, le.join("privkey.pem")).unwrap();
        certs
    }

    /// nginx for a generated web directory, mime.types beside it as
    /// /etc/nginx has it.
    pub fn nginx(&self, web: &Path) -> Command {
        fs::copy("/etc/nginx/mime.types", web.join("nginx/mime.types")).unwrap();
        let mut cmd = Command::new(tool("nginx", "nginx"));
        cmd.arg("-e")
            .arg(self.scratch.join("logs/early.log"))
            .arg("-c")
            .arg(web.join("nginx/nginx.conf"));
        cmd
    }
}

/// A host's systemd units as systemd would load them, copied into `dir`:
/// NAME@PORT.{socket,service} for each port, the target, the migrate unit,
/// and the alert unit as OnFailure= starts it for the first instance.
/// Their paths, for `systemd-analyze verify`.
pub fn instance_units(host: &Path, dir: &Path, name: &str, ports: &[u16]) -> Vec<PathBuf> {
    let systemd = host.join("systemd");
    let mut files = Vec::new();
    let mut copy = |from: String, to: String| {
        let to = dir.join(to);
        fs::copy(systemd.join(from), &to).unwrap();
        files.push(to);
    };
    for port in ports {
        for kind in ["socket", "service"] {
            copy(format!("{name}@.{kind}"), format!("{name}@{port}.{kind}"));
        }
    }
    for unit in [format!("{name}.target"), format!("{name}-migrate.service")] {
        copy(unit.clone(), unit);
    }
    copy(
        format!("{name}-alert@.service"),
        format!("{name}-alert@{name}@{}.service.service", ports[0]),
    );
    files
}
