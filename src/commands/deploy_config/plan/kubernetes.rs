//! The Kubernetes target: a kustomize base (the app's Deployment, Service,
//! HTTPRoute and Gateway, or an Ingress, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicies,
//! ConfigMap and PostgreSQL; the migrations run in an init container) and
//! an overlay for each environment (its namespace and image tag). The app
//! serves its static files itself (`STATIC_ROOT`).

use super::{Component, Planned, Root, View};
use crate::commands::deploy_config::context::Context;

/// The base: each template under `templates/deploy/`, and its file under
/// `kubernetes/base/`.
const BASE: &[(&str, &str)] = &[
    (
        "kubernetes/base/kustomization.yaml.jinja",
        "kustomization.yaml",
    ),
    ("kubernetes/base/deployment.yaml.jinja", "deployment.yaml"),
    ("kubernetes/base/service.yaml.jinja", "service.yaml"),
    ("kubernetes/base/pdb.yaml.jinja", "pdb.yaml"),
    ("kubernetes/base/hpa.yaml.jinja", "hpa.yaml"),
    (
        "kubernetes/base/networkpolicy.yaml.jinja",
        "networkpolicy.yaml",
    ),
    ("kubernetes/base/postgres.yaml.jinja", "postgres.yaml"),
];

/// Each environment's overlay, under `kubernetes/overlays/ENV/`: the
/// namespace, the image tag and the environment's size.
const OVERLAY: &[(&str, &str)] = &[
    (
        "kubernetes/overlay/kustomization.yaml.jinja",
        "kustomization.yaml",
    ),
    ("kubernetes/overlay/namespace.yaml.jinja", "namespace.yaml"),
];

pub fn plan(ctx: &Context, files: &mut Vec<Planned>) {
    let mut add = |template: &'static str, path: String, view| {
        files.push(Planned {
            component: Component::Kubernetes,
            template,
            root: Root::Out,
            path: format!("kubernetes/{path}"),
            view,
            mode: None,
        })
    };
    for (template, file) in BASE {
        add(template, format!("base/{file}"), View::Machine(0));
    }
    // How requests come in: the Gateway API's HTTPRoute (and the app's own
    // Gateway, unless it attaches to one), or a plain Ingress.
    let routing: &[(&'static str, &str)] =
        match (ctx.kubernetes.routing, &ctx.kubernetes.gateway.class) {
            ("ingress", _) => &[("kubernetes/base/ingress.yaml.jinja", "ingress.yaml")],
            (_, Some(_)) => &[
                ("kubernetes/base/gateway.yaml.jinja", "gateway.yaml"),
                ("kubernetes/base/httproute.yaml.jinja", "httproute.yaml"),
            ],
            (_, None) => &[("kubernetes/base/httproute.yaml.jinja", "httproute.yaml")],
        };
    for (template, file) in routing {
        add(template, format!("base/{file}"), View::Machine(0));
    }
    for (i, env) in ctx.kubernetes.environments.iter().enumerate() {
        for (template, file) in OVERLAY {
            add(
                template,
                format!("overlays/{env}/{file}"),
                View::Environment(i),
            );
        }
    }
}
