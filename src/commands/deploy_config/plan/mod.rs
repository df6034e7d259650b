//! Which files the settings give: the targets (`vm`, `container`,
//! `kubernetes`), each a module that lists its templates and where their
//! output goes. Rendering and writing are `output`'s.

mod container;
mod kubernetes;
mod vm;

use super::context::{Context, Targets};

/// The kinds of files, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    Nginx,
    Systemd,
    Postgres,
    Nftables,
    Install,
    Readme,
    /// Dockerfile, .dockerignore and the compose files.
    Container,
    /// The kustomize base and overlays.
    Kubernetes,
}

impl Component {
    /// The targets `--only` turns on by naming this kind.
    pub fn targets(only: &[Component]) -> Targets {
        use Component::*;
        let mut t = Targets::default();
        for c in only {
            match c {
                Nginx | Systemd | Postgres | Nftables | Install => t.vm = true,
                Container => t.container = true,
                Kubernetes => t.kubernetes = true,
                Readme => {}
            }
        }
        t
    }
}

/// Where a file's path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The output directory (`--out`, `deploy/` by default).
    Out,
    /// The workspace root: the container build's context, where Docker
    /// looks for `.dockerignore`.
    Workspace,
}

/// Which view of the context a template gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The context with `host` = `Context::hosts[i]`.
    Machine(usize),
    /// The context as seen from inside compose's containers
    /// (`Context::in_containers`), `host` being the one machine.
    Containers,
    /// The context with `environment` = `kubernetes.environments[i]`.
    Environment(usize),
}

/// One file to render: a template under `templates/deploy/`.
#[derive(Debug, Clone)]
pub struct Planned {
    pub component: Component,
    pub template: &'static str,
    pub root: Root,
    pub path: String,
    pub view: View,
    pub mode: Option<u32>,
}

impl Planned {
    fn out(component: Component, template: &'static str, path: String) -> Planned {
        Planned {
            component,
            template,
            root: Root::Out,
            path,
            view: View::Machine(0),
            mode: None,
        }
    }
}

/// Every file of the targets, in a stable order.
pub fn plan(ctx: &Context) -> Vec<Planned> {
    let mut files = vec![Planned::out(
        Component::Readme,
        "README.md.jinja",
        "README.md".into(),
    )];
    if ctx.targets.vm {
        vm::plan(ctx, &mut files);
    }
    if ctx.targets.container {
        container::plan(ctx, &mut files);
    }
    if ctx.targets.kubernetes {
        kubernetes::plan(ctx, &mut files);
    }
    files
}

/// The top-level directories of the output directory the plan owns: files
/// there that the settings no longer produce are reported.
pub fn owned_dir(name: &str) -> bool {
    let machine = ["web-", "app-", "db-"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    machine
        || [
            "nginx",
            "systemd",
            "postgres",
            "nftables",
            "container",
            "kubernetes",
        ]
        .contains(&name)
}
