//! The raw deploy settings: `[package.metadata.manage.deploy]` as written,
//! their defaults, and the command-line flags that override them.
//!
//! Nothing here is trusted: strings stay strings and numbers stay wide so
//! that [`super::validate`] can name every bad value in one report rather
//! than serde stopping at the first.

mod targets;

pub use targets::{Container, Kubernetes};

use serde::Deserialize;

/// `[package.metadata.manage.deploy]`. The documented schema is the one
/// `manage startproject` writes into Cargo.toml
/// (`templates/startproject/Cargo.toml.jinja`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Settings {
    /// What to write: `vm` (nginx + systemd, the default), `container`
    /// (Dockerfile, compose) and `kubernetes` (kustomize manifests).
    pub targets: Vec<String>,
    pub container: Container,
    pub kubernetes: Kubernetes,
    pub domains: Vec<String>,
    pub tls: String,
    pub acme_webroot: String,
    /// Where certbot keeps its certificates (advanced).
    pub letsencrypt_dir: String,
    pub tls_certificate: Option<String>,
    pub tls_certificate_key: Option<String>,
    pub hsts: bool,
    pub hsts_max_age: u64,
    pub instances: u64,
    pub base_port: u64,
    /// Defaults that depend on the package name are filled in by validate.
    pub user: Option<String>,
    pub prefix: Option<String>,
    pub binary: Option<String>,
    pub env_file: Option<String>,
    pub static_root: Option<String>,
    /// Defaults to `static-url` of `[package.metadata.manage]`.
    pub static_url: Option<String>,
    pub client_max_body_size: String,
    pub proxy_connect_timeout: String,
    pub proxy_read_timeout: String,
    pub rate_limit: String,
    pub rate_limit_burst: u64,
    /// Stricter limits for some paths (prefixes): `"/login" = { rate = "10r/m", burst = 5 }`.
    pub rate_limit_paths: std::collections::BTreeMap<String, PathLimit>,
    pub nginx_version: String,
    pub openssl_version: String,
    pub brotli: bool,
    pub ssh_port: u64,
    pub db_port: u64,
    /// `sqlite` (the default on one machine) or `postgres` (PostgreSQL on
    /// the db machine, or on the one machine).
    pub database: Option<String>,
    pub db_name: Option<String>,
    pub db_user: Option<String>,
    /// Addresses or networks the app may connect to besides the web and db
    /// machines (systemd's IPAddressAllow); none by default.
    pub app_egress: Vec<String>,
    /// Networks SSH is open to; empty: anywhere on the web machine (warned),
    /// the web machine on the others.
    pub admin_networks: Vec<String>,
    /// Proxies in front of nginx (a CDN, a load balancer) whose
    /// X-Forwarded-For nginx trusts for the client address.
    pub real_ip_from: Vec<String>,
    /// install.sh turns on Debian's unattended security upgrades.
    pub unattended_upgrades: bool,
    /// The app says READY=1 and feeds the watchdog (`Type=notify` units)
    /// [default: when the package depends on sd-notify or libsystemd].
    pub notify: Option<bool>,
    /// Seconds without a watchdog ping before systemd kills and restarts
    /// an instance (with `notify`); 0 turns the watchdog off.
    pub watchdog_sec: u64,
    /// Each instance is restarted after running this long (`24h`), with a
    /// random extra of up to a quarter of it, so that they part.
    pub recycle_after: Option<String>,
    /// systemd's MemoryHigh= (throttled above) and MemoryMax= (killed
    /// above) for each instance: `512M`, `2G`, `25%`.
    pub memory_high: Option<String>,
    pub memory_max: Option<String>,
    pub topology: Option<Topology>,
    // Advanced: where nginx keeps its files and listens. The defaults are
    // Debian's; tests point them into a temporary directory.
    pub http_port: u64,
    pub https_port: u64,
    pub listen_address: Option<String>,
    /// nginx listens on IPv6 too (`[::]:80`) unless listen-address is set.
    pub ipv6: bool,
    pub nginx_user: String,
    pub nginx_conf_dir: String,
    pub nginx_pid: String,
    pub nginx_log_dir: String,
    pub nginx_temp_dir: Option<String>,
}

/// A rate limit of its own for one path.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PathLimit {
    pub rate: String,
    #[serde(default = "default_path_burst")]
    pub burst: u64,
}

fn default_path_burst() -> u64 {
    5
}

/// The three-machine layout, by private address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Topology {
    pub web: String,
    pub app: Vec<String>,
    pub db: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            targets: vec!["vm".into()],
            container: Container::default(),
            kubernetes: Kubernetes::default(),
            domains: Vec::new(),
            tls: "letsencrypt".into(),
            acme_webroot: "/var/www/letsencrypt".into(),
            letsencrypt_dir: "/etc/letsencrypt/live".into(),
            tls_certificate: None,
            tls_certificate_key: None,
            hsts: true,
            // Two years, as Mozilla recommends.
            hsts_max_age: 63_072_000,
            // Two, so that one can restart while the other serves.
            instances: 2,
            base_port: 8001,
            user: None,
            prefix: None,
            binary: None,
            env_file: None,
            static_root: None,
            static_url: None,
            client_max_body_size: "16m".into(),
            proxy_connect_timeout: "5s".into(),
            proxy_read_timeout: "60s".into(),
            // A flood guard for each client address, not a quota: an office
            // or a carrier NAT shares one address (see real-ip-from), and
            // the paths that need a strict limit get rate-limit-paths.
            rate_limit: "30r/s".into(),
            rate_limit_burst: 60,
            rate_limit_paths: Default::default(),
            // Debian stable (bookworm).
            nginx_version: "1.22".into(),
            openssl_version: "3.0".into(),
            brotli: true,
            ssh_port: 22,
            db_port: 5432,
            database: None,
            db_name: None,
            db_user: None,
            app_egress: Vec::new(),
            admin_networks: Vec::new(),
            real_ip_from: Vec::new(),
            unattended_upgrades: true,
            notify: None,
            watchdog_sec: 10,
            recycle_after: None,
            memory_high: None,
            memory_max: None,
            topology: None,
            http_port: 80,
            https_port: 443,
            listen_address: None,
            ipv6: true,
            nginx_user: "www-data".into(),
            nginx_conf_dir: "/etc/nginx".into(),
            nginx_pid: "/run/nginx.pid".into(),
            nginx_log_dir: "/var/log/nginx".into(),
            nginx_temp_dir: None,
        }
    }
}

/// Command-line overrides; each one replaces the setting of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Settings (override Cargo.toml)")]
pub struct Overrides {
    /// What to write: vm, container, kubernetes (repeat or separate with commas) [default: vm]
    #[arg(long = "target", value_name = "TARGET", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// The app's container image, without a tag [default: the package name]
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// The Dockerfile's build stage, pinned [default: rust:1.95-slim-bookworm]
    #[arg(long, value_name = "IMAGE")]
    pub builder_image: Option<String>,
    /// The Dockerfile's runtime stage, pinned [default: debian:bookworm-slim]
    #[arg(long, value_name = "IMAGE")]
    pub runtime_image: Option<String>,
    /// nginx's image in compose, pinned; its tag's version picks nginx's syntax [default: nginx:1.28-bookworm]
    #[arg(long, value_name = "IMAGE")]
    pub nginx_image: Option<String>,
    /// PostgreSQL's image in compose and Kubernetes, pinned [default: postgres:15-bookworm]
    #[arg(long, value_name = "IMAGE")]
    pub postgres_image: Option<String>,
    /// Names nginx answers to (repeat or separate with commas)
    #[arg(long = "domain", value_name = "NAME", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// TLS: letsencrypt, custom or off
    #[arg(long, value_name = "MODE")]
    pub tls: Option<String>,
    /// Certificate chain for `--tls custom`
    #[arg(long, value_name = "PATH")]
    pub tls_certificate: Option<String>,
    /// Private key for `--tls custom`
    #[arg(long, value_name = "PATH")]
    pub tls_certificate_key: Option<String>,
    /// Directory certbot writes ACME challenges to
    #[arg(long, value_name = "PATH")]
    pub acme_webroot: Option<String>,
    /// Send Strict-Transport-Security
    #[arg(long, value_name = "BOOL")]
    pub hsts: Option<bool>,
    /// HSTS max-age in seconds
    #[arg(long, value_name = "SECONDS")]
    pub hsts_max_age: Option<u64>,
    /// How many app processes (gunicorn's workers)
    #[arg(long, value_name = "N")]
    pub instances: Option<u64>,
    /// Port of the first instance; instance i listens on base-port + i - 1
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u64>,
    /// Unix user the app runs as [default: the package name in lowercase, `-` as `_`, at most 31 characters]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Install prefix on the app machines
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Path of the app binary on the app machines
    #[arg(long, value_name = "PATH")]
    pub binary: Option<String>,
    /// Environment file with the app's secrets
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<String>,
    /// Directory nginx serves the static URL from
    #[arg(long, value_name = "PATH")]
    pub static_root: Option<String>,
    /// Largest request body nginx accepts (nginx size: 16m)
    #[arg(long, value_name = "SIZE")]
    pub client_max_body_size: Option<String>,
    /// Timeout for connecting to an instance (nginx time: 5s)
    #[arg(long, value_name = "TIME")]
    pub proxy_connect_timeout: Option<String>,
    /// Timeout between two reads from an instance (nginx time: 60s)
    #[arg(long, value_name = "TIME")]
    pub proxy_read_timeout: Option<String>,
    /// Requests per second (or minute) per client address (nginx rate: 30r/s)
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<String>,
    /// Requests a client may send above the rate before getting 429
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<u64>,
    /// nginx version of the web machine (1.22 = Debian 12)
    #[arg(long, value_name = "VERSION")]
    pub nginx_version: Option<String>,
    /// OpenSSL version nginx is linked with (3.0 = Debian 12)
    #[arg(long, value_name = "VERSION")]
    pub openssl_version: Option<String>,
    /// Port sshd listens on; every firewall keeps it open
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u64>,
    /// PostgreSQL port on the database machine
    #[arg(long, value_name = "PORT")]
    pub db_port: Option<u64>,
    /// Database the app machines may use [default: the package name in lowercase, `-` as `_`]
    /// `sqlite` or `postgres` (on one machine: a local PostgreSQL) [default: postgres with a topology, else sqlite]
    #[arg(long, value_name = "ENGINE")]
    pub database: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub db_name: Option<String>,
    /// Database user of the app [default: as db-name]
    #[arg(long, value_name = "NAME")]
    pub db_user: Option<String>,
    /// Addresses or networks the app may connect to (repeat; none by default)
    #[arg(long, value_name = "NET", value_delimiter = ',')]
    pub app_egress: Vec<String>,
    /// Networks SSH is open to (repeat) [default: anywhere on the web machine, the web machine on the others]
    #[arg(long = "admin-network", value_name = "NET", value_delimiter = ',')]
    pub admin_networks: Vec<String>,
    /// Proxies in front of nginx whose X-Forwarded-For gives the client address (repeat)
    #[arg(long = "real-ip-from", value_name = "NET", value_delimiter = ',')]
    pub real_ip_from: Vec<String>,
    /// Turn on Debian's unattended security upgrades on every machine
    #[arg(long, value_name = "BOOL")]
    pub unattended_upgrades: Option<bool>,
    /// Type=notify units: the app says READY=1 and feeds the watchdog [default: when the package depends on sd-notify or libsystemd]
    #[arg(long, value_name = "BOOL")]
    pub notify: Option<bool>,
    /// Seconds without a watchdog ping before an instance is restarted; 0: off [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub watchdog_sec: Option<u64>,
    /// Restart each instance after it ran this long (`24h`; s, m, h, d), staggered
    #[arg(long, value_name = "TIME")]
    pub recycle_after: Option<String>,
    /// Memory above which an instance is throttled (systemd MemoryHigh=: 512M, 2G, 25%)
    #[arg(long, value_name = "SIZE")]
    pub memory_high: Option<String>,
    /// Memory above which an instance is killed and restarted (systemd MemoryMax=)
    #[arg(long, value_name = "SIZE")]
    pub memory_max: Option<String>,
    /// Three-machine layout: private address of the web machine
    #[arg(long, value_name = "ADDR", requires_all = ["app", "db"])]
    pub web: Option<String>,
    /// Three-machine layout: private address of an app machine (repeat)
    #[arg(long, value_name = "ADDR", value_delimiter = ',', requires_all = ["web", "db"])]
    pub app: Vec<String>,
    /// Three-machine layout: private address of the database machine
    #[arg(long, value_name = "ADDR", requires_all = ["web", "app"])]
    pub db: Option<String>,

    // Advanced settings, for tests and unusual machines.
    #[arg(long, hide = true)]
    pub http_port: Option<u64>,
    #[arg(long, hide = true)]
    pub https_port: Option<u64>,
    #[arg(long, hide = true)]
    pub listen_address: Option<String>,
    #[arg(long, hide = true)]
    pub ipv6: Option<bool>,
    #[arg(long, hide = true)]
    pub letsencrypt_dir: Option<String>,
    #[arg(long, hide = true)]
    pub brotli: Option<bool>,
    #[arg(long, hide = true)]
    pub nginx_user: Option<String>,
    #[arg(long, hide = true)]
    pub nginx_conf_dir: Option<String>,
    #[arg(long, hide = true)]
    pub nginx_pid: Option<String>,
    #[arg(long, hide = true)]
    pub nginx_log_dir: Option<String>,
    #[arg(long, hide = true)]
    pub nginx_temp_dir: Option<String>,
}

impl Settings {
    /// Applies every flag that was given.
    pub fn apply(&mut self, o: Overrides) {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = o.$field { self.$field = v; }
            )*};
        }
        macro_rules! set_opt {
            ($($field:ident),*) => {$(
                if o.$field.is_some() { self.$field = o.$field; }
            )*};
        }
        if !o.app_egress.is_empty() {
            self.app_egress = o.app_egress;
        }
        if !o.domains.is_empty() {
            self.domains = o.domains;
        }
        if !o.targets.is_empty() {
            self.targets = o.targets;
        }
        if o.image.is_some() {
            self.container.image = o.image;
        }
        let c = &mut self.container;
        for (flag, setting) in [
            (o.builder_image, &mut c.builder_image),
            (o.runtime_image, &mut c.runtime_image),
            (o.nginx_image, &mut c.nginx_image),
            (o.postgres_image, &mut c.postgres_image),
        ] {
            if let Some(value) = flag {
                *setting = value;
            }
        }
        if !o.admin_networks.is_empty() {
            self.admin_networks = o.admin_networks;
        }
        if !o.real_ip_from.is_empty() {
            self.real_ip_from = o.real_ip_from;
        }
        set!(
            tls,
            acme_webroot,
            hsts,
            hsts_max_age,
            instances,
            base_port,
            client_max_body_size,
            proxy_connect_timeout,
            proxy_read_timeout,
            rate_limit,
            rate_limit_burst,
            ssh_port,
            db_port,
            nginx_version,
            openssl_version,
            http_port,
            https_port,
            letsencrypt_dir,
            ipv6,
            brotli,
            unattended_upgrades,
            watchdog_sec,
            nginx_user,
            nginx_conf_dir,
            nginx_pid,
            nginx_log_dir
        );
        set_opt!(
            tls_certificate,
            tls_certificate_key,
            user,
            prefix,
            binary,
            env_file,
            static_root,
            database,
            db_name,
            db_user,
            listen_address,
            nginx_temp_dir,
            notify,
            recycle_after,
            memory_high,
            memory_max
        );
        if let (Some(web), Some(db)) = (o.web, o.db) {
            self.topology = Some(Topology {
                web,
                app: o.app,
                db,
            });
        }
    }
}
