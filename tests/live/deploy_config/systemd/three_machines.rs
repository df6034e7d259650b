//! The three-machine layout on real systemd (#10, #13): web, two app
//! machines and db, each a booted Debian 12 in a network namespace of its
//! own on one private subnet, each installed by its own install.sh; restarts
//! under load through web that fail no request; and a new layout
//! (`base-port` moved) rolled out machine by machine as deploy/README.md
//! says, the old instances pruned, under load, without a failed request.

use std::fs;
use std::time::Duration;

use super::container::{debian_tree, Container};
use super::{
    assert_no_failures, copy_tree, exposure, finish_load, nginx_errors, plain_site_args,
    release_build, start_load, start_wrk, through_nginx, NAME, NEW_CONNECTIONS, PLAIN, PORTS,
};
use crate::support::deploy::{site, Netns};
use crate::support::eventually;

#[test]
fn three_machines_each_installed_by_its_own_install_sh_restart_without_losing_a_request() {
    let tree = debian_tree();
    let s = site(NAME);
    let exe = release_build(&s);

    // One private subnet between the four machines, on a bridge in a
    // namespace of its own; nothing reaches this machine's network.
    let (web_ip, app_ips, db_ip) = (
        "10.231.78.10",
        ["10.231.78.20", "10.231.78.21"],
        "10.231.78.30",
    );
    let mut net = Netns::with_prefix("ms");
    let machines = [
        ("web-1", "web", web_ip),
        ("app-1", "app1", app_ips[0]),
        ("app-2", "app2", app_ips[1]),
        ("db-1", "db", db_ip),
    ];
    let namespaces: Vec<String> = machines
        .iter()
        .map(|(_, short, ip)| net.add_machine(short, ip))
        .collect();

    let apps = app_ips.join(",");
    let layout = plain_site_args(&["--web", web_ip, "--app", &apps, "--db", db_ip]);
    let out = s.scratch.join("out");
    s.deploy(&out, &layout);

    // Declared after `net`, so the containers stop before the namespaces go.
    let containers: Vec<Container> = machines
        .iter()
        .zip(&namespaces)
        .map(|((dir, short, _), ns)| {
            let c = Container::boot_in(&tree, short, Some(ns));
            let deploy = c.rootfs().join("root/deploy");
            copy_tree(&out.join(dir), &deploy);
            if dir.starts_with("app") {
                fs::copy(&exe, deploy.join(NAME)).unwrap();
            }
            if dir.starts_with("web") {
                copy_tree(&s.project.join("static"), &deploy.join("static"));
            }
            c
        })
        .collect();
    let [web, app1, app2, db] = [
        &containers[0],
        &containers[1],
        &containers[2],
        &containers[3],
    ];

    // db first, then the apps, then web: each by its own install.sh, twice.
    for c in [db, app1, app2, web] {
        if c.name == app1.name || c.name == app2.name {
            // As the README says: db's install.sh made the password; the
            // operator copies it to the app machines (root, 0600).
            let rel = format!("etc/{NAME}/db-password");
            let to = c.rootfs().join(&rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(db.rootfs().join(&rel), &to).unwrap();
            fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        let first = c.sh_ok("cd /root/deploy && ./install.sh");
        assert!(first.contains("is set up;"), "{first}");
        let second = c.sh_ok("cd /root/deploy && ./install.sh");
        assert!(second.contains("nothing changed"), "{}: {second}", c.name);
    }
    // The migrations ran once: on app-1 (its two instances shared the one
    // run of the oneshot), found nothing to do on app-2.
    let migrate_log = |c: &Container| {
        String::from_utf8_lossy(
            &c.sh(&format!(
                "journalctl -u {NAME}-migrate.service -o cat --no-pager"
            ))
            .stdout,
        )
        .into_owned()
    };
    let (log1, log2) = (migrate_log(app1), migrate_log(app2));
    assert_eq!(
        log1.matches("applied 20260101000000_create_notes").count(),
        1,
        "{log1}"
    );
    assert!(
        !log2.contains("applied 2026") && log2.contains("no migrations to apply"),
        "{log2}"
    );
    assert_eq!(
        db.sh_ok(&format!(
            "runuser -u postgres -- psql -tAc 'SELECT count(*) FROM _sqlx_migrations' {NAME}"
        ))
        .trim(),
        "1"
    );
    assert_eq!(through_nginx(web, PLAIN, "/healthz"), "200");
    for app in [app1, app2] {
        let level = exposure(app, &format!("{NAME}@{}.service", PORTS[0]));
        assert!(level <= 1.2, "{}: exposure {level}", app.name);
    }
    // PostgreSQL answers the app machines only.
    let pg = |c: &Container| {
        c.sh(&format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{db_ip}/5432'"
        ))
        .status
        .success()
    };
    assert!(pg(app1), "app-1 cannot reach PostgreSQL");
    assert!(!pg(web), "web reached PostgreSQL");
    // The daily pg_dump: once the database exists, a run leaves a dump.
    // (install.sh created the database.)
    db.sh_ok(&format!(
        "systemctl start {NAME}-pg-dump.service && \
         systemctl is-enabled {NAME}-pg-dump.timer && ls /var/backups/{NAME}/{NAME}-*.dump"
    ));
    nginx_errors(web);

    // Under load through web: every instance on both app machines restarted
    // in turn, each after the one before answers; then one killed.
    let wrk = start_load(web, PLAIN, 10);
    std::thread::sleep(Duration::from_secs(1));
    for (app, ip) in [(app1, app_ips[0]), (app2, app_ips[1])] {
        for port in PORTS {
            app.sh_ok(&format!("systemctl restart {NAME}@{port}.service"));
            eventually(Duration::from_secs(10), || {
                app.sh(&format!(
                    "curl -fsS --max-time 5 http://{ip}:{port}/healthz"
                ))
                .status
                .success()
                .then_some(())
            })
            .unwrap_or_else(|| panic!("{}: {NAME}@{port} did not come back", app.name));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    app2.sh_ok(&format!(
        "systemctl kill -s KILL {NAME}@{}.service",
        PORTS[1]
    ));
    let load = finish_load(wrk);
    let errors = nginx_errors(web);
    assert_no_failures(
        "three machines, four restarts and a SIGKILL",
        &load,
        &errors,
    );
    eventually(Duration::from_secs(10), || {
        app2.sh(&format!(
            "curl -fsS --max-time 5 http://{}:{}/healthz",
            app_ips[1], PORTS[1]
        ))
        .status
        .success()
        .then_some(())
    })
    .expect("the killed instance is restarted");

    // A new layout, rolled out as deploy/README.md says: `base-port` moves
    // the instances (8001-8002 to 8011-8012). The app machines first: the
    // new instances start, the old ones keep serving the web machine,
    // whose nginx still proxies to them (through the firewall); then web;
    // then `./install.sh prune` on the app machines stops the old ones and
    // closes their ports. Under load through web, no request fails.
    const MOVED: [u16; 2] = [8011, 8012];
    let moved = s.scratch.join("moved");
    let mut args = layout.clone();
    args.extend(["--base-port".to_owned(), MOVED[0].to_string()]);
    s.deploy(&moved, &args);
    for ((dir, _, _), c) in machines.iter().zip(&containers) {
        copy_tree(&moved.join(dir), &c.rootfs().join("root/deploy"));
    }
    let reaches = |port: u16, ip: &str| {
        web.sh(&format!(
            "curl -fsS --max-time 2 -o /dev/null http://{ip}:{port}/healthz"
        ))
        .status
        .success()
    };
    // web's install.sh reloads nginx: a connection per request (see
    // NEW_CONNECTIONS).
    let wrk = start_wrk(web, PLAIN, 30, NEW_CONNECTIONS);
    std::thread::sleep(Duration::from_secs(1));
    for (app, ip) in [(app1, app_ips[0]), (app2, app_ips[1])] {
        let run = app.sh("cd /root/deploy && ./install.sh");
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{}: {said}", app.name);
        assert!(said.contains("still run from an earlier layout"), "{said}");
        for port in PORTS.into_iter().chain(MOVED) {
            assert!(reaches(port, ip), "{}: web cannot reach {port}", app.name);
        }
    }
    let web_run = web.sh_ok("cd /root/deploy && ./install.sh");
    assert!(web_run.contains("is set up;"), "{web_run}");
    for (app, ip) in [(app1, app_ips[0]), (app2, app_ips[1])] {
        let pruned = app.sh_ok("cd /root/deploy && ./install.sh prune");
        assert!(
            pruned.contains("2 instances of an earlier layout stopped"),
            "{pruned}"
        );
        for port in PORTS {
            assert!(!reaches(port, ip), "{}: {port} still answers", app.name);
        }
        let rules = app.sh_ok("nft list ruleset");
        assert!(!rules.contains("earlier layout"), "{rules}");
        let again = app.sh_ok("cd /root/deploy && ./install.sh");
        assert!(again.contains("nothing changed"), "{}: {again}", app.name);
    }
    let load = finish_load(wrk);
    let errors = nginx_errors(web);
    assert_no_failures(
        "three machines, a new base-port rolled out and pruned",
        &load,
        &errors,
    );
    assert_eq!(through_nginx(web, PLAIN, "/healthz"), "200");
    drop(containers);
    drop(net);
}
