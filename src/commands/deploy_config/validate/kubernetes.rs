//! The Kubernetes target's settings
//! (`[package.metadata.manage.deploy.kubernetes]`) and what the manifests
//! derive from the others: object names from the package name, the image
//! tag from its version, `DATABASE_URL` for PostgreSQL's Service, the
//! Gateway (or Ingress) the requests come through, and who may send them.
//!
//! The manifests paste these values into YAML, so each is held to the
//! grammar Kubernetes gives it (a DNS label, a quantity, an image tag)
//! rather than to YAML's quoting rules.

use super::super::checks::*;
use super::super::context::{Db, GatewayRef, Kubernetes, ProxySource};
use super::super::settings::Settings;
use super::web::Limits;

/// What the Kubernetes target takes from the rest of the validation.
pub struct Inputs<'a> {
    /// The cargo package name and version.
    pub name: &'a str,
    pub version: &'a str,
    /// `instances`: the autoscaler's floor.
    pub replicas: u64,
    pub db: &'a Db,
    pub limits: &'a Limits,
}

/// `APP-postgres-0` and the StatefulSet's `controller-revision-hash`
/// label (`APP-postgres-` and 10 characters) must stay within 63.
const APP_MAX: usize = 40;

pub fn kubernetes(p: &mut Problems, s: &Settings, i: &Inputs) -> Kubernetes {
    let k = &s.kubernetes;
    if !i.db.postgres {
        p.add(
            "database",
            s.database.as_deref().unwrap_or("sqlite"),
            "the `kubernetes` target runs replicas that cannot share a SQLite file: set `database = \"postgres\"`",
        );
    }
    let app = dns_label_from(i.name);
    if !app.starts_with(|c: char| c.is_ascii_lowercase()) {
        p.add(
            "the package name",
            i.name,
            "gives no Kubernetes name (a letter first, then letters, digits and `-`); rename the package or leave out the `kubernetes` target",
        );
    }
    let namespace = dns_label(
        p,
        "kubernetes.namespace",
        k.namespace.as_deref().unwrap_or(&app),
    );
    let routing = match k.routing.as_str() {
        "gateway" => "gateway",
        "ingress" => "ingress",
        other => {
            p.add(
                "kubernetes.routing",
                other,
                "is `gateway` (an HTTPRoute of the Gateway API) or `ingress` (a plain Ingress)",
            );
            "gateway"
        }
    };
    let ingress_class = dns_label(p, "kubernetes.ingress-class", &k.ingress_class);
    let gateway = gateway(p, k, &app);
    let proxy = match k.ingress_namespace.as_deref() {
        Some(ns) => ProxySource {
            namespace: dns_label(p, "kubernetes.ingress-namespace", ns),
            gateway_pods: None,
        },
        None if routing == "ingress" => ProxySource {
            namespace: Some("ingress-nginx".into()),
            gateway_pods: None,
        },
        None => ProxySource {
            namespace: gateway.namespace.clone(),
            gateway_pods: Some(gateway.name.clone()),
        },
    };
    let cert_manager_issuer =
        dns_label(p, "kubernetes.cert-manager-issuer", &k.cert_manager_issuer);
    let environments = environments(p, s, namespace.as_deref());
    if k.max_replicas < i.replicas || k.max_replicas > 1000 {
        p.add(
            "kubernetes.max-replicas",
            &k.max_replicas.to_string(),
            format!("is from `instances` ({}) to 1000", i.replicas),
        );
    }
    let cpu_request = quantity(p, "kubernetes.cpu-request", &k.cpu_request, Bounds::CPU);
    let memory_request = quantity(
        p,
        "kubernetes.memory-request",
        &k.memory_request,
        Bounds::MEMORY,
    );
    let memory_limit = quantity(
        p,
        "kubernetes.memory-limit",
        &k.memory_limit,
        Bounds::MEMORY,
    );
    let database_storage = quantity(
        p,
        "kubernetes.database-storage",
        &k.database_storage,
        Bounds::STORAGE,
    );
    if let (Some(request), Some(limit)) = (&memory_request, &memory_limit) {
        if value(limit) < value(request) {
            p.add(
                "kubernetes.memory-limit",
                limit,
                format!("is below `memory-request` ({request}): the pod could never be scheduled"),
            );
        }
    }
    let image_tag = image_tag(p, i.version);
    let db = i.db;
    Kubernetes {
        database_url: format!(
            "postgres://{}@{app}-postgres:{}/{}",
            db.user, db.port, db.name
        ),
        tls_secret: format!("{app}-tls"),
        app,
        namespace: namespace.unwrap_or_default(),
        routing,
        gateway,
        ingress_class: ingress_class.unwrap_or_default(),
        proxy,
        cert_manager_issuer: cert_manager_issuer.unwrap_or_default(),
        environments,
        replicas: i.replicas,
        max_replicas: k.max_replicas,
        cpu_request: cpu_request.unwrap_or_default(),
        memory_request: memory_request.unwrap_or_default(),
        memory_limit: memory_limit.unwrap_or_default(),
        database_storage: database_storage.unwrap_or_default(),
        image_tag: image_tag.unwrap_or_default(),
        proxy_read_seconds: seconds(&i.limits.proxy_read_timeout),
    }
}

/// The Gateway the HTTPRoute attaches to: `gateway` (`NAME` or
/// `NAMESPACE/NAME`, an existing one), else one named after the app that
/// manage writes with `gateway-class`.
fn gateway(
    p: &mut Problems,
    k: &crate::commands::deploy_config::settings::Kubernetes,
    app: &str,
) -> GatewayRef {
    let Some(text) = k.gateway.as_deref() else {
        return GatewayRef {
            name: app.to_owned(),
            namespace: None,
            class: dns_subdomain(p, "kubernetes.gateway-class", &k.gateway_class),
        };
    };
    let (namespace, name) = match text.split_once('/') {
        Some((ns, name)) => (dns_label(p, "kubernetes.gateway", ns), name),
        None => (None, text),
    };
    GatewayRef {
        name: dns_subdomain(p, "kubernetes.gateway", name).unwrap_or_default(),
        namespace,
        class: None,
    }
}

/// An object name: DNS labels joined by `.`, at most 253 characters.
fn dns_subdomain(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if value.len() <= 253 && value.split('.').all(label) {
        Some(value.to_owned())
    } else {
        p.add(
            setting,
            value,
            "is a Kubernetes object name: lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit",
        );
        None
    }
}

/// One overlay each; its namespace is `NAMESPACE-ENVIRONMENT`.
fn environments(p: &mut Problems, s: &Settings, namespace: Option<&str>) -> Vec<String> {
    let k = &s.kubernetes;
    if k.environments.is_empty() {
        p.add(
            "kubernetes.environments",
            "[]",
            "names at least one environment (an overlay each)",
        );
    }
    let mut environments: Vec<String> = Vec::new();
    for (i, env) in k.environments.iter().enumerate() {
        let setting = format!("kubernetes.environments[{i}]");
        let Some(env) = dns_label(p, &setting, env) else {
            continue;
        };
        if environments.contains(&env) {
            p.add(&setting, &env, "is named twice");
        } else if env == "base" {
            p.add(
                &setting,
                &env,
                "`base` is the kustomize base's directory; choose another name",
            );
        } else if namespace.is_some_and(|ns| ns.len() + 1 + env.len() > 63) {
            p.add(
                &setting,
                &env,
                format!(
                    "the overlay's namespace `{}-{env}` is longer than 63 characters; shorten it or `kubernetes.namespace`",
                    namespace.unwrap_or_default()
                ),
            );
        } else {
            environments.push(env);
        }
    }
    environments
}

/// A Kubernetes name from the package name: lowercase, `_` as `-`, at
/// most [`APP_MAX`] characters, no `-` at either end.
fn dns_label_from(name: &str) -> String {
    let label: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .take(APP_MAX)
        .collect();
    label.trim_matches('-').to_owned()
}

/// RFC 1123 label: what Kubernetes accepts as a namespace or object name part.
fn dns_label(p: &mut Problems, setting: &str, value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Some(value.to_owned())
    } else {
        p.add(
            setting,
            value,
            "is a DNS label: 1 to 63 lowercase letters, digits and `-`, not starting or ending with `-`",
        );
        None
    }
}

/// The package version as an image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]*`,
/// 128 at most): SemVer's build metadata (`+...`) has no place in one.
fn image_tag(p: &mut Problems, version: &str) -> Option<String> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && !version.starts_with(['.', '-'])
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Some(version.to_owned())
    } else {
        p.add(
            "the package version",
            version,
            "is the image tag the Kubernetes overlays deploy, and an image tag has only letters, digits, `.`, `_` and `-`: drop the `+` build metadata",
        );
        None
    }
}

/// What a quantity may be: its smallest and largest value, an example,
/// and whether `m` (thousandths) makes sense for it.
struct Bounds {
    min: f64,
    max: f64,
    example: &'static str,
    range: &'static str,
    milli: bool,
}

impl Bounds {
    const CPU: Bounds = Bounds {
        min: 0.001,
        max: 256.0,
        example: "100m",
        range: "from `1m` to `256` cores",
        milli: true,
    };
    const MEMORY: Bounds = Bounds {
        min: 16.0 * MI,
        max: 1024.0 * GI,
        example: "128Mi",
        range: "from `16Mi` (less cannot start the app) to `1Ti`",
        milli: false,
    };
    const STORAGE: Bounds = Bounds {
        min: 1.0 * GI,
        max: 64.0 * 1024.0 * GI,
        example: "10Gi",
        range: "from `1Gi` to `64Ti`",
        milli: false,
    };
}

const MI: f64 = 1024.0 * 1024.0;
const GI: f64 = 1024.0 * MI;

/// A Kubernetes quantity such as `100m`, `0.5`, `128Mi` or `1G`, within
/// `bounds`.
fn quantity(p: &mut Problems, setting: &str, value: &str, bounds: Bounds) -> Option<String> {
    let digits = value
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = value.split_at(digits);
    let number_ok = !number.is_empty()
        && number.len() <= 12
        && number.split('.').count() <= 2
        && !number.starts_with('.')
        && !number.ends_with('.');
    const UNITS: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    if !number_ok || !UNITS.contains(&unit) || (unit == "m" && !bounds.milli) {
        p.add(
            setting,
            value,
            format!(
                "is a Kubernetes quantity, like `{}`{}",
                bounds.example,
                if unit == "m" && !bounds.milli {
                    " (`m` is thousandths, not mega: use `Mi` or `M`)"
                } else {
                    ""
                }
            ),
        );
        return None;
    }
    let v = self::value(value);
    if v < bounds.min || v > bounds.max {
        p.add(setting, value, format!("is {}", bounds.range));
        return None;
    }
    Some(value.to_owned())
}

/// A quantity's value, to compare a limit with a request.
fn value(quantity: &str) -> f64 {
    let digits = quantity
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = quantity.split_at(digits);
    let factor = match unit {
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => MI,
        "Gi" => GI,
        "Ti" => 1024.0 * GI,
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => 1.0,
    };
    number.parse::<f64>().unwrap_or(0.0) * factor
}

/// An nginx time (`500ms`, `60s`, `2m`, `1h`; validated) in whole seconds,
/// at least 1.
fn seconds(time: &str) -> u64 {
    let digits = time.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = time[..digits].parse().unwrap_or(0);
    let s = match &time[digits..] {
        "ms" => n.div_ceil(1000),
        "m" => n * 60,
        "h" => n * 3600,
        _ => n,
    };
    s.max(1)
}

#[cfg(test)]
mod tests;
