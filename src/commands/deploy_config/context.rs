//! The template context: what every template under `templates/deploy/`
//! sees, field by field, and the machines of the layout. Only the shape:
//! `validate` checks the values and computes the layout; templates paste
//! them unescaped.

use serde::Serialize;

/// What the templates see. Field names are the template variables.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub name: String,
    /// `name` as an identifier for nginx zones and nftables tables.
    pub ident: String,
    pub manage_version: &'static str,
    pub domains: Vec<String>,
    pub tls: Tls,
    pub hsts: Hsts,
    pub ports: Vec<u16>,
    /// `host:port` of every app instance, for nginx's upstream.
    pub upstreams: Vec<String>,
    pub user: String,
    pub prefix: String,
    pub binary: String,
    pub env_file: String,
    pub env_dir: String,
    pub static_root: String,
    pub static_url: String,
    /// What install.sh asks each instance before it counts as ready.
    pub health_path: String,
    /// systemd gives an instance up after this many starts in this many
    /// seconds, and its alert unit runs.
    pub supervision: Supervision,
    pub start_limit_burst: u32,
    pub start_limit_interval: u32,
    pub client_max_body_size: String,
    pub proxy_connect_timeout: String,
    pub proxy_read_timeout: String,
    pub rate_limit: String,
    pub rate_limit_burst: u64,
    /// Stricter limits for some paths, each with a zone of its own.
    pub path_limits: Vec<PathLimit>,
    pub compress_types: &'static str,
    pub nginx: Nginx,
    pub ssh_port: u16,
    /// Proxies whose X-Forwarded-For nginx trusts (set_real_ip_from).
    pub real_ip_from: Vec<String>,
    pub unattended_upgrades: bool,
    pub db: Db,
    pub topology: Option<Topology>,
    pub hosts: Vec<Host>,
    pub targets: Targets,
    pub container: Container,
    pub kubernetes: Kubernetes,
}

/// What is written: the machines' files (`vm`), a container image and
/// compose file, Kubernetes manifests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Targets {
    pub vm: bool,
    pub container: bool,
    pub kubernetes: bool,
}

/// The image, and how it is built from the workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// The app's image without a tag: `myapp`, `registry.example.com/team/myapp`.
    pub image: String,
    pub builder_image: String,
    pub runtime_image: String,
    pub nginx_image: String,
    pub postgres_image: String,
    pub uid: u32,
    pub port: u16,
    /// The cargo package and the binary it runs (`cargo build -p`, `--bin`).
    pub package: String,
    pub bin: String,
    /// The package's directory below the workspace root (the build
    /// context), `.` when it is the root; `/`-separated, no trailing `/`.
    pub package_dir: String,
    /// The workspace root's Cargo.toml and every member's, relative to it.
    pub manifests: Vec<String>,
    /// Every source file cargo needs to see for the dependency layer: each
    /// target's root file of each member (a `main` stub or an empty one).
    pub stubs: Vec<Stub>,
    /// Static files copied into the image, relative to the workspace root:
    /// collectstatic's output when `static-build-dir` is inside the
    /// workspace (then `static_manifest` is set), else the `static-dir` as
    /// it is; empty when the package has none.
    pub static_source: String,
    pub static_manifest: bool,
    /// Paths inside the image.
    pub app_dir: &'static str,
    pub static_root: &'static str,
    /// The SQLite database's directory (a volume), with `database = "sqlite"`.
    pub data_dir: &'static str,
    /// The way from `deploy/container/` back to the workspace root, for
    /// compose's build context.
    pub context_from_out: String,
    /// The output directory below the workspace root, which
    /// `.dockerignore` leaves out; empty when it is outside the workspace
    /// (or holds what the build needs, which is warned of).
    pub out_dir: String,
}

/// One source file the dependency layer fakes.
#[derive(Debug, Clone, Serialize)]
pub struct Stub {
    pub path: String,
    /// Its directory, for `mkdir -p`.
    pub dir: String,
    /// `fn main() {}` (binaries, build scripts, examples, tests, benches)
    /// rather than an empty library.
    pub main: bool,
}

/// The Kubernetes manifests.
#[derive(Debug, Clone, Serialize)]
pub struct Kubernetes {
    /// The package name as a Kubernetes name (at most 40 characters, so
    /// that `APP-postgres` and the StatefulSet's pod and revision names
    /// stay within 63): every object's name and `app.kubernetes.io/name`.
    pub app: String,
    /// Each overlay's namespace is `NAMESPACE-ENVIRONMENT`.
    pub namespace: String,
    /// `gateway` (an HTTPRoute) or `ingress`.
    pub routing: &'static str,
    /// The Gateway the HTTPRoute attaches to.
    pub gateway: GatewayRef,
    pub ingress_class: String,
    /// Where the NetworkPolicy admits requests from: a namespace, or (for
    /// a Gateway) the Gateway's own pods.
    pub proxy: ProxySource,
    pub cert_manager_issuer: String,
    /// The Secret holding the certificate (cert-manager writes it with
    /// `tls = "letsencrypt"`; with `custom` the operator creates it).
    pub tls_secret: String,
    pub environments: Vec<String>,
    /// The Deployment's replicas and the autoscaler's floor (`instances`).
    pub replicas: u64,
    pub max_replicas: u64,
    pub cpu_request: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub database_storage: String,
    /// The overlays' image tag: the package version.
    pub image_tag: String,
    /// `DATABASE_URL` for the app: PostgreSQL's Service, no password.
    pub database_url: String,
    /// `proxy-read-timeout` in whole seconds: the HTTPRoute's request
    /// timeout.
    pub proxy_read_seconds: u64,
}

/// How systemd supervises each instance (`validate::supervision`).
#[derive(Debug, Clone, Serialize)]
pub struct Supervision {
    /// `Type=notify`: ready when the app says READY=1.
    pub notify: bool,
    /// `WatchdogSec=`; 0: none.
    pub watchdog_sec: u64,
    /// `RuntimeMaxSec=` and `RuntimeRandomizedExtraSec=`.
    pub recycle_sec: Option<u64>,
    pub recycle_spread_sec: u64,
    pub memory_high: Option<String>,
    pub memory_max: Option<String>,
}

/// The Gateway of `routing = "gateway"`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayRef {
    pub name: String,
    /// `None`: the app's namespace.
    pub namespace: Option<String>,
    /// Written by manage (with this class), else an existing one.
    pub class: Option<String>,
}

/// Who may send requests to the app's pods.
#[derive(Debug, Clone, Serialize)]
pub struct ProxySource {
    /// Pods of this namespace (the ingress controller's).
    pub namespace: Option<String>,
    /// Pods labelled `gateway.networking.k8s.io/gateway-name` with this
    /// name (a Gateway's data plane), in `namespace` or the app's own.
    pub gateway_pods: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub enabled: bool,
    /// `letsencrypt`, `custom` or `off`.
    pub mode: &'static str,
    pub certificate: String,
    pub certificate_key: String,
    pub acme_webroot: String,
    pub cert_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hsts {
    pub enabled: bool,
    pub max_age: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nginx {
    pub version: String,
    pub openssl_version: String,
    /// `http2 on;` (nginx >= 1.25.1) instead of `listen ... http2`.
    pub http2_directive: bool,
    /// Ticket keys never rotate before nginx 1.23.2.
    pub session_tickets_off: bool,
    pub ecdh_curve: &'static str,
    pub brotli: bool,
    /// Big enough for the longest domain (see `validate`).
    pub server_names_hash_bucket_size: usize,
    pub user: String,
    pub conf_dir: String,
    pub pid: String,
    pub log_dir: String,
    pub temp_dir: Option<String>,
    pub http_port: u16,
    pub https_port: u16,
    /// `listen` addresses: the port (and `[::]:port` with IPv6), or
    /// `listen-address:port`.
    pub listen_http: Vec<String>,
    pub listen_https: Vec<String>,
    /// `:8443` when HTTPS is not on 443, for redirects.
    pub https_port_suffix: String,
    /// Rendered for compose's nginx container: logs to its output.
    pub in_container: bool,
    /// `server NAME resolve` in the upstream (nginx >= 1.27.3, containers).
    pub upstream_resolve: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Db {
    pub port: u16,
    pub name: String,
    pub user: String,
    /// PostgreSQL (else SQLite in the service's state directory).
    pub postgres: bool,
    /// PostgreSQL on the app's own machine (the one-machine layout).
    pub local: bool,
    /// `DATABASE_URL` for the app, never with a password in it.
    pub url: String,
    /// The password, root-only on the app machines; the app gets it as the
    /// systemd credential `db-password`.
    pub password_file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub web: Addr,
    pub apps: Vec<Addr>,
    pub db: Addr,
}

#[derive(Debug, Clone, Serialize)]
pub struct Addr {
    pub address: String,
    /// nftables address family keyword: `ip` or `ip6`.
    pub family: &'static str,
    /// The single-address network, for pg_hba.conf.
    pub cidr: String,
}

/// One machine of the layout; templates get it as `host`.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// `web-1`, `app-2`, ...; empty in the one-machine layout.
    pub name: String,
    pub label: String,
    /// Output subdirectory with a trailing `/`, or empty.
    pub dir: String,
    pub address: String,
    pub roles: Vec<&'static str>,
    pub web: bool,
    pub app: bool,
    pub db: bool,
    /// Address the app sockets bind (`host.bind_socket` brackets IPv6).
    pub bind: String,
    pub bind_socket: String,
    /// Who may connect to the app sockets.
    pub allow_in: Vec<String>,
    /// Whom the app instances may talk to at all.
    pub allow_service: Vec<String>,
    /// Where SSH may come from; empty: anywhere.
    pub ssh_from: Vec<Net>,
}

/// One `location ^~ PATH` with its own `limit_req` zone.
#[derive(Debug, Clone, Serialize)]
pub struct PathLimit {
    pub path: String,
    pub zone: String,
    pub rate: String,
    pub burst: u64,
}

/// An address or network with its nftables family (`ip` or `ip6`).
#[derive(Debug, Clone, Serialize)]
pub struct Net {
    pub family: &'static str,
    pub net: String,
}

pub const COMPRESS_TYPES: &str = "text/plain text/css text/xml text/javascript application/json application/javascript application/xml application/rss+xml application/atom+xml image/svg+xml";

impl Context {
    /// The context as seen from inside compose's containers: nginx runs in
    /// a container of its own, reaches the app's instances by their
    /// service names, keeps its runtime files in `/tmp` (a tmpfs: its root
    /// is read-only), finds the static files where the image puts them,
    /// and speaks the directives of the nginx its image tag names.
    pub fn in_containers(&self) -> Context {
        let mut c = self.clone();
        let port = self.container.port;
        c.upstreams = (1..=self.ports.len())
            .map(|i| format!("app-{i}:{port}"))
            .collect();
        c.static_root = "/srv/static".into();
        let n = &mut c.nginx;
        n.user = "nginx".into();
        n.conf_dir = "/etc/nginx".into();
        n.pid = "/tmp/nginx.pid".into();
        n.log_dir = "/var/log/nginx".into();
        // /tmp is a tmpfs; nginx creates its temporary directories there.
        n.temp_dir = Some("/tmp".into());
        // Not in the official images.
        n.brotli = false;
        n.in_container = true;
        n.http_port = 80;
        n.https_port = 443;
        // Docker gives containers IPv4 only unless told otherwise.
        n.listen_http = vec!["80".into()];
        n.listen_https = vec!["443".into()];
        if let Some(version) = image_version(&self.container.nginx_image) {
            n.version = format!("{}.{}.{}", version.0, version.1, version.2);
            n.http2_directive = version >= (1, 25, 1);
            n.session_tickets_off = version < (1, 23, 2);
            n.upstream_resolve = version >= (1, 27, 3);
        }
        c
    }
}

/// `1.28` of `nginx:1.28-bookworm` (as 1.28.0), when the tag starts with a
/// version.
fn image_version(image: &str) -> Option<(u32, u32, u32)> {
    let tag = image.split('@').next()?.rsplit_once(':')?.1;
    let version = tag.split('-').next()?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}
