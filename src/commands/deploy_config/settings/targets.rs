//! The settings of the container and Kubernetes targets, each a table of
//! its own under `[package.metadata.manage.deploy]`:
//! `[package.metadata.manage.deploy.container]` and
//! `[package.metadata.manage.deploy.kubernetes]`. Raw, like the rest of the
//! settings; `validate::targets` checks them.

use serde::Deserialize;

/// `[package.metadata.manage.deploy.container]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Container {
    /// The app's image, without a tag [default: the package name].
    pub image: Option<String>,
    /// Pinned base images: the build stage (a Rust toolchain), the runtime
    /// stage, and the services compose adds.
    pub builder_image: String,
    pub runtime_image: String,
    pub nginx_image: String,
    pub postgres_image: String,
    /// The numeric user and group the app runs as in its container.
    pub uid: u64,
    /// The port the app listens on inside its container.
    pub port: u64,
}

impl Default for Container {
    fn default() -> Self {
        Container {
            image: None,
            builder_image: "rust:1.95-slim-bookworm".into(),
            runtime_image: "debian:bookworm-slim".into(),
            nginx_image: "nginx:1.28-bookworm".into(),
            postgres_image: "postgres:15-bookworm".into(),
            uid: 10001,
            port: 8000,
        }
    }
}

/// `[package.metadata.manage.deploy.kubernetes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Kubernetes {
    /// [default: the package name, as a DNS label]
    pub namespace: Option<String>,
    /// How requests reach the Service: `gateway` (an HTTPRoute of the
    /// Gateway API) or `ingress` (a plain Ingress).
    pub routing: String,
    /// The GatewayClass of the Gateway manage writes (`routing = "gateway"`
    /// without `gateway`).
    pub gateway_class: String,
    /// An existing Gateway to attach the HTTPRoute to, `NAME` or
    /// `NAMESPACE/NAME`; then manage writes none.
    pub gateway: Option<String>,
    /// `ingressClassName` of the Ingress (`routing = "ingress"`).
    pub ingress_class: String,
    /// Where the proxy pods run; the NetworkPolicy admits traffic only from
    /// there [default: `ingress-nginx` for an Ingress; for a Gateway, its
    /// own pods (the `gateway.networking.k8s.io/gateway-name` label), in
    /// its namespace].
    pub ingress_namespace: Option<String>,
    /// cert-manager ClusterIssuer for `tls = "letsencrypt"`.
    pub cert_manager_issuer: String,
    /// One kustomize overlay each.
    pub environments: Vec<String>,
    /// The HorizontalPodAutoscaler's ceiling; its floor is `instances`.
    pub max_replicas: u64,
    pub cpu_request: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Size of the PostgreSQL volume (`database = "postgres"`).
    pub database_storage: String,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            namespace: None,
            routing: "gateway".into(),
            gateway_class: "nginx".into(),
            gateway: None,
            ingress_class: "nginx".into(),
            ingress_namespace: None,
            cert_manager_issuer: "letsencrypt".into(),
            environments: vec!["staging".into(), "production".into()],
            max_replicas: 10,
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            memory_limit: "256Mi".into(),
            database_storage: "10Gi".into(),
        }
    }
}
