//! The container target: the image (a Dockerfile and .dockerignore at the
//! build context's root, the workspace root) and a compose file that runs
//! nginx, the app's instances and PostgreSQL on one Docker host, with
//! nginx's configuration as seen from inside the containers.

use super::{Component, Planned, Root, View};
use crate::commands::deploy_config::context::Context;

pub fn plan(ctx: &Context, files: &mut Vec<Planned>) {
    let dockerfile = match ctx.container.package_dir.as_str() {
        "." => "Dockerfile".to_owned(),
        dir => format!("{dir}/Dockerfile"),
    };
    let mut at_root = |template, path: String| {
        files.push(Planned {
            component: Component::Container,
            template,
            root: Root::Workspace,
            path,
            view: View::Machine(0),
            mode: None,
        })
    };
    at_root("container/Dockerfile.jinja", dockerfile);
    at_root("container/dockerignore.jinja", ".dockerignore".into());

    let name = &ctx.name;
    let mut out = |template, path: &str, view| {
        files.push(Planned {
            component: Component::Container,
            template,
            root: Root::Out,
            path: format!("container/{path}"),
            view,
            mode: None,
        })
    };
    out(
        "container/compose.yaml.jinja",
        "compose.yaml",
        View::Machine(0),
    );
    out(
        "container/env.example.jinja",
        "app.env.example",
        View::Machine(0),
    );
    // nginx: the machines' templates, through the containers' view.
    let nginx = [
        ("nginx/nginx.conf.jinja", "nginx/nginx.conf".to_owned()),
        (
            "nginx/http.conf.jinja",
            format!("nginx/{name}/sites/http.conf"),
        ),
        (
            "nginx/security-headers.conf.jinja",
            format!("nginx/{name}/snippets/security-headers.conf"),
        ),
        (
            "nginx/proxy.conf.jinja",
            format!("nginx/{name}/snippets/proxy.conf"),
        ),
    ];
    for (template, path) in nginx {
        out(template, &path, View::Containers);
    }
    if ctx.tls.enabled {
        out(
            "nginx/https.conf.jinja",
            &format!("nginx/{name}/sites/https.conf"),
            View::Containers,
        );
    }
}
