//! The Kubernetes settings: what the manifests derive, and every bad value
//! refused naming its setting.

use super::*;
use crate::commands::deploy_config::settings::Kubernetes as Raw;

fn db(postgres: bool) -> Db {
    Db {
        port: 5432,
        name: "site".into(),
        user: "site".into(),
        postgres,
        local: false,
        url: String::new(),
        password_file: String::new(),
    }
}

fn limits(rate: &str, burst: u64) -> Limits {
    Limits {
        client_max_body_size: "16m".into(),
        proxy_connect_timeout: "500ms".into(),
        proxy_read_timeout: "2m".into(),
        rate_limit: rate.into(),
        rate_limit_burst: burst,
    }
}

fn check(name: &str, version: &str, k: Raw, postgres: bool) -> (Kubernetes, Vec<String>) {
    let s = Settings {
        kubernetes: k,
        ..Settings::default()
    };
    let mut p = Problems::default();
    let (db, limits) = (db(postgres), limits("30r/s", 60));
    let inputs = Inputs {
        name,
        version,
        replicas: 2,
        db: &db,
        limits: &limits,
    };
    let k = kubernetes(&mut p, &s, &inputs);
    (k, p.0)
}

#[test]
fn defaults_give_names_urls_and_annotations() {
    let (k, problems) = check("My_Site", "0.1.0", Raw::default(), true);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(k.app, "my-site");
    assert_eq!(k.namespace, "my-site");
    assert_eq!(k.tls_secret, "my-site-tls");
    assert_eq!(k.database_url, "postgres://site@my-site-postgres:5432/site");
    assert_eq!(k.image_tag, "0.1.0");
    assert_eq!(k.proxy_read_seconds, 120);
    // An HTTPRoute on the app's own Gateway, whose pods alone may call it.
    assert_eq!(k.routing, "gateway");
    assert_eq!(k.gateway.name, "my-site");
    assert_eq!(k.gateway.namespace, None);
    assert_eq!(k.gateway.class.as_deref(), Some("nginx"));
    assert_eq!(k.proxy.gateway_pods.as_deref(), Some("my-site"));
    assert_eq!(k.proxy.namespace, None);
    let long = "a".repeat(80);
    assert_eq!(check(&long, "1.0.0", Raw::default(), true).0.app.len(), 40);
}

/// `key` of the raw settings set to `value`.
fn set(key: &str, value: &str) -> Raw {
    let mut k = Raw::default();
    let v = value.to_owned();
    match key {
        "namespace" => k.namespace = Some(v),
        "ingress-class" => k.ingress_class = v,
        "ingress-namespace" => k.ingress_namespace = Some(v),
        "routing" => k.routing = v,
        "gateway" => k.gateway = Some(v),
        "gateway-class" => k.gateway_class = v,
        "cert-manager-issuer" => k.cert_manager_issuer = v,
        "environments" => k.environments = v.split(',').map(str::to_owned).collect(),
        "max-replicas" => k.max_replicas = v.parse().unwrap(),
        "cpu-request" => k.cpu_request = v,
        "memory-request" => k.memory_request = v,
        "memory-limit" => k.memory_limit = v,
        "database-storage" => k.database_storage = v,
        _ => unreachable!("{key}"),
    }
    if key == "environments" && value.is_empty() {
        k.environments.clear();
    }
    k
}

#[test]
fn hostile_and_odd_values_are_refused_naming_the_setting() {
    let long = "a".repeat(55);
    let cases = [
        ("namespace", "prod\nevil: x", "namespace", "DNS label"),
        ("namespace", "Prod", "namespace", "DNS label"),
        ("namespace", &long, "environments[1]", "longer than 63"),
        ("ingress-class", "nginx\"; x", "ingress-class", "DNS label"),
        (
            "ingress-namespace",
            "-ingress",
            "ingress-namespace",
            "DNS label",
        ),
        (
            "cert-manager-issuer",
            "le{{x}}",
            "cert-manager-issuer",
            "DNS label",
        ),
        ("routing", "Ingress", "routing", "`gateway`"),
        ("routing", "", "routing", "`ingress`"),
        ("gateway", "infra/Shared", "gateway", "object name"),
        ("gateway", "infra/", "gateway", "object name"),
        ("gateway", "a/b/c", "gateway", "object name"),
        ("gateway", "-x/gw", "gateway", "DNS label"),
        ("gateway-class", "eg\nx: y", "gateway-class", "object name"),
        ("gateway-class", "", "gateway-class", "object name"),
        ("environments", "", "environments", "at least one"),
        ("environments", "a,a", "environments[1]", "twice"),
        ("environments", "base", "environments[0]", "base"),
        ("environments", "../x", "environments[0]", "DNS label"),
        ("max-replicas", "1", "max-replicas", "from `instances` (2)"),
        ("max-replicas", "5000", "max-replicas", "to 1000"),
        ("cpu-request", "0", "cpu-request", "from `1m`"),
        ("cpu-request", "1e3", "cpu-request", "quantity"),
        ("cpu-request", "100m\n", "cpu-request", "quantity"),
        ("memory-request", "128m", "memory-request", "not mega"),
        ("memory-request", "1Ki", "memory-request", "from `16Mi`"),
        ("memory-limit", "9Ei", "memory-limit", "to `1Ti`"),
        (
            "memory-limit",
            "64Mi",
            "memory-limit",
            "below `memory-request`",
        ),
        ("database-storage", "10GB", "database-storage", "quantity"),
        (
            "database-storage",
            "100Mi",
            "database-storage",
            "from `1Gi`",
        ),
        ("database-storage", "-1Gi", "database-storage", "quantity"),
    ];
    for (key, value, setting, why) in cases {
        let problems = check("site", "0.1.0", set(key, value), true).1;
        assert!(
            problems.len() == 1
                && problems[0].starts_with(&format!("`kubernetes.{setting}` = "))
                && problems[0].contains(why),
            "{key} = {value:?}: {problems:#?}"
        );
    }
    let problems = check("site", "1.0.0+build.5", Raw::default(), true).1;
    assert!(problems[0].starts_with("`the package version` = `1.0.0+build.5`"));
    let problems = check("site", "0.1.0", Raw::default(), false).1;
    assert!(
        problems[0].starts_with("`database` = `sqlite`"),
        "{problems:?}"
    );
    let problems = check("_1site", "0.1.0", Raw::default(), true).1;
    assert!(
        problems[0].starts_with("`the package name` = `_1site`"),
        "{problems:?}"
    );
}

#[test]
fn times_become_whole_seconds() {
    assert_eq!(seconds("60s"), 60);
    assert_eq!(seconds("1500ms"), 2);
    assert_eq!(seconds("1h"), 3600);
}

#[test]
fn an_existing_gateway_or_an_ingress_says_who_may_call_the_app() {
    let (k, problems) = check("site", "0.1.0", set("gateway", "infra/shared.gw"), true);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        (
            k.gateway.name.as_str(),
            k.gateway.namespace.as_deref(),
            k.gateway.class
        ),
        ("shared.gw", Some("infra"), None)
    );
    assert_eq!(k.proxy.gateway_pods.as_deref(), Some("shared.gw"));
    assert_eq!(k.proxy.namespace.as_deref(), Some("infra"));

    let (k, _) = check("site", "0.1.0", set("gateway", "edge"), true);
    assert_eq!(
        (k.gateway.name.as_str(), k.gateway.namespace),
        ("edge", None)
    );

    // The proxies' namespace, when named, is the whole rule.
    let (k, _) = check(
        "site",
        "0.1.0",
        set("ingress-namespace", "envoy-gateway-system"),
        true,
    );
    assert_eq!(k.proxy.namespace.as_deref(), Some("envoy-gateway-system"));
    assert_eq!(k.proxy.gateway_pods, None);

    let (k, problems) = check("site", "0.1.0", set("routing", "ingress"), true);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(k.routing, "ingress");
    assert_eq!(k.proxy.namespace.as_deref(), Some("ingress-nginx"));
    assert_eq!(k.proxy.gateway_pods, None);
}
