//! Editor links (`MANAGE_EDITOR`): the file:line of a real compiler error
//! in the error page opens the editor through `/__manage/open`, which
//! refuses requests without this run's token, from another origin, or for
//! a file outside the workspace.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::runserver::{Start, FIRST_BUILD};
use crate::support::{eventually, fixtures, get_with, html_get, manage};

/// An editor that writes its arguments to `record`.
fn recording_editor(dir: &Path, record: &Path) -> String {
    let script = dir.join("editor.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    format!("{} {{file}} {{line}} {{column}}", script.display())
}

#[test]
fn a_compiler_error_in_the_page_opens_the_editor_at_its_line() {
    let (tmp, dir) = fixtures::copy(
        "echo-app",
        &[("name = \"echo-app\"", "name = \"ed-links\"")],
    );
    let main = dir.join("src/main.rs");
    let good = fs::read_to_string(&main).unwrap();
    let broken = good.replacen("fn main() {", "fn main() {\n    let _x: u8 = \"text\";", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("let _x: u8"))
        .unwrap()
        + 1;
    fs::write(&main, broken).unwrap();
    let editors = tempfile::tempdir().unwrap();
    let record = editors.path().join("opened");
    let editor = recording_editor(editors.path(), &record);
    let server = Start::new((tmp, dir)).env("MANAGE_EDITOR", &editor).spawn();
    server.expect_outcome("build-failed", FIRST_BUILD);

    let page = html_get(&server.addr, "/");
    assert_eq!(page.status, 503);
    let text = page.text();
    // The span in rustc's text (` --> src/main.rs:LINE:COL`) is a link,
    // as the heading's file:line is.
    let span = format!("title=\"open in the editor\">src/main.rs:{line}:");
    let at = text
        .find(&span)
        .unwrap_or_else(|| panic!("no editor link on rustc's span in the page:\n{text}"));
    let start = text[..at].rfind("href=\"").unwrap() + "href=\"".len();
    let link = text[start..][..text[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(link.starts_with("/__manage/open?token="), "{link}");
    assert!(
        text.matches("class=\"manage-editor\"").count() >= 2,
        "the heading links too:\n{text}"
    );
    let source = server.dir.canonicalize().unwrap().join("src/main.rs");
    assert!(
        link.contains(&format!("&line={line}&")),
        "the link is not for line {line}: {link}"
    );

    // Not from another origin, not without the token, not for a file
    // outside the workspace: nothing is started.
    let without_token = link.replacen("token=", "tokn=", 1);
    let outside = format!(
        "{}&file=/etc/passwd&line=1",
        &link[..link.find("&file=").unwrap()]
    );
    for (target, extra, status) in [
        (link.as_str(), "Origin: http://evil.example\r\n", 403),
        (link.as_str(), "Sec-Fetch-Site: cross-site\r\n", 403),
        (without_token.as_str(), "", 403),
        (outside.as_str(), "", 404),
    ] {
        let response = get_with(&server.addr, target, extra);
        assert_eq!(
            response.status,
            status,
            "{target} {extra:?}: {}",
            response.text()
        );
    }
    assert!(!record.exists(), "a refused request started the editor");

    let opened = get_with(
        &server.addr,
        &link,
        "Sec-Fetch-Site: same-origin\r\nOrigin: http://localhost\r\n",
    );
    assert_eq!(opened.status, 204, "{}", opened.text());
    let args = eventually(Duration::from_secs(10), || fs::read_to_string(&record).ok());
    let args = args.expect("the editor was not started");
    let words: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(words[0], source.display().to_string(), "{args}");
    assert_eq!(words[1], line.to_string(), "{args}");
    assert!(words[2].parse::<u32>().is_ok_and(|c| c > 1), "{args}");
}

#[test]
fn a_terminal_editor_in_manage_editor_is_refused_with_the_fix() {
    let (_tmp, dir) = fixtures::copy("echo-app", &[("name = \"echo-app\"", "name = \"ed-vim\"")]);
    let out = manage()
        .current_dir(&dir)
        .env("MANAGE_EDITOR", "vim")
        .args(["runserver", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("MANAGE_EDITOR=`vim`"), "{stderr}");
    assert!(stderr.contains("terminal"), "{stderr}");
    assert!(stderr.contains("{file}"), "the fix is named: {stderr}");
}

#[test]
fn a_panics_location_in_the_crash_page_is_a_link() {
    let (tmp, dir) = fixtures::copy(
        "echo-app",
        &[("name = \"echo-app\"", "name = \"ed-panic\"")],
    );
    let main = dir.join("src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    let panicking = text.replacen(
        "fn main() {",
        "fn main() {\n    panic!(\"boom at start\");",
        1,
    );
    let line = panicking
        .lines()
        .position(|l| l.contains("boom at start"))
        .unwrap()
        + 1;
    fs::write(&main, panicking).unwrap();
    let server = Start::new((tmp, dir)).env("MANAGE_EDITOR", "code").spawn();
    server.expect_outcome("not-ready", FIRST_BUILD);
    let page = html_get(&server.addr, "/");
    let text = page.text();
    assert!(text.contains("boom at start"), "{text}");
    let source = server.dir.canonicalize().unwrap().join("src/main.rs");
    let link = format!(
        "href=\"vscode://file{}:{line}:5\" title=\"open in the editor\">src/main.rs:{line}:5</a>",
        source.display()
    );
    assert!(text.contains(&link), "no {link} in:\n{text}");
}
