//! Names derived from a cargo package name, shared by the commands that
//! need them: `deploy-config` defaults the app's unix user and its
//! PostgreSQL database and role to them, and `startproject` refuses a
//! project name whose derived names could never be used.
//!
//! Package names may hold capitals and `-` and run to 64 characters; a
//! unix user is lowercase and at most 31 (systemd's limit), a PostgreSQL
//! identifier that needs no quoting is lowercase and at most 63.

/// Longest unix user name systemd accepts in `User=` (UT_NAMESIZE - 1).
pub const MAX_USER: usize = 31;
/// Longest PostgreSQL identifier (NAMEDATALEN - 1).
pub const MAX_SQL_IDENT: usize = 63;

/// The unix user a package's service runs as unless told otherwise.
pub fn account(package: &str) -> String {
    derive(package, MAX_USER)
}

/// The PostgreSQL database and role a package uses unless told otherwise.
pub fn database(package: &str) -> String {
    derive(package, MAX_SQL_IDENT)
}

fn derive(package: &str, max: usize) -> String {
    package
        .chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .take(max)
        .collect()
}

/// Accounts that belong to the system or to the services beside the app
/// (Debian's base accounts, nginx, PostgreSQL): an app that ran as one of
/// them would share its power, and `root` is never right.
pub fn system_account(name: &str) -> bool {
    const SYSTEM: &[&str] = &[
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www_data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "nogroup",
        "postgres",
        "nginx",
        "messagebus",
        "sshd",
        "_apt",
        "systemd_network",
        "systemd_resolve",
        "systemd_timesync",
        "systemd_journal",
    ];
    SYSTEM.contains(&name.replace('-', "_").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_their_systems() {
        assert_eq!(account("Main"), "main");
        assert_eq!(account("my-Blog"), "my_blog");
        assert_eq!(account(&"a".repeat(64)).len(), MAX_USER);
        assert_eq!(database(&"B".repeat(64)), "b".repeat(MAX_SQL_IDENT));
        assert!(system_account("root"));
        assert!(system_account("www-data"));
        assert!(system_account(&account("Postgres")));
        assert!(!system_account("mysite"));
    }
}
