//! The scaffold's pages, as the runserver tests edit and read them.

use super::{Session, REBUILD};
use crate::support::{eventually, get};

impl Session {
    /// A Rust edit that changes every page's title (a rebuild, not a
    /// template edit): the `project` global in the scaffold's src/pages.rs
    /// goes from `from` (`None`: the package name) to `to`, and the welcome
    /// page's title becomes "`to` is running".
    pub fn rename_in_code(&self, from: Option<&str>, to: &str) {
        let global = |name: Option<&str>| match name {
            None => "env.add_global(\"project\", env!(\"CARGO_PKG_NAME\"))".to_owned(),
            Some(name) => format!("env.add_global(\"project\", {name:?})"),
        };
        self.edit("src/pages.rs", &global(from), &global(Some(to)));
    }

    /// An edit of the welcome page's template (templates/welcome.html):
    /// its title goes from `from` to `to`.
    pub fn retitle_template(&self, from: &str, to: &str) {
        let block = |title: &str| format!("{{% block title %}}{title}{{% endblock %}}");
        self.edit("templates/welcome.html", &block(from), &block(to));
    }

    pub fn title(&self) -> Option<String> {
        let response = get(&self.addr, "/").ok()?;
        (response.status == 200).then(|| title_of(&response.text()))
    }

    pub fn wait_for_title(&self, title: &str) {
        let seen = eventually(REBUILD, || self.title().filter(|t| t == title));
        assert!(
            seen.is_some(),
            "never served title {title:?}; last: {:?}; events:\n{}",
            self.title(),
            self.events_text()
        );
    }
}

fn title_of(html: &str) -> String {
    html.split("<title>")
        .nth(1)
        .and_then(|rest| rest.split("</title>").next())
        .unwrap_or("")
        .to_owned()
}
