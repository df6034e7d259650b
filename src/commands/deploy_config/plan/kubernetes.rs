//! The Kubernetes target: a kustomize base (the app's Deployment, Service,
//! Ingress, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicies,
//! ConfigMap, the migration Job and PostgreSQL) and an overlay for each
//! environment.

use super::{Component, Planned, Root, View};
use crate::commands::deploy_config::context::Context;

/// The base: each template under `templates/deploy/`, and its file under
/// `kubernetes/base/`.
const BASE: &[(&str, &str)] = &[(
    "kubernetes/base/kustomization.yaml.jinja",
    "kustomization.yaml",
)];

/// Each environment's overlay, under `kubernetes/overlays/ENV/`.
const OVERLAY: &[(&str, &str)] = &[(
    "kubernetes/overlay/kustomization.yaml.jinja",
    "kustomization.yaml",
)];

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
