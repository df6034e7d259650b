use super::*;

/// A workspace with `src/main.rs` and an editor reached by `how`.
fn workspace(how: How) -> (tempfile::TempDir, Editor) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let editor = Editor {
        how,
        root: dir.path().to_path_buf(),
        token: "0123abcd".into(),
    };
    (dir, editor)
}

fn main_rs(dir: &tempfile::TempDir) -> String {
    dir.path()
        .canonicalize()
        .unwrap()
        .join("src/main.rs")
        .display()
        .to_string()
}

#[test]
fn names_commands_and_templates_say_how_the_editor_is_reached() {
    assert_eq!(
        how("code").unwrap(),
        How::Url("vscode://file{file}:{line}:{column}".into())
    );
    assert_eq!(
        how("/usr/bin/zed").unwrap(),
        How::Url("zed://file{file}:{line}:{column}".into())
    );
    assert_eq!(
        how("emacsclient -c").unwrap(),
        How::Command(vec![
            "emacsclient".into(),
            "-c".into(),
            "-n".into(),
            "+{line}:{column}".into(),
            "{file}".into()
        ])
    );
    assert_eq!(
        how("myedit +{line} {file}").unwrap(),
        How::Command(vec!["myedit".into(), "+{line}".into(), "{file}".into()])
    );
    assert_eq!(
        how("idea://open?file={file}&line={line}").unwrap(),
        How::Url("idea://open?file={file}&line={line}".into())
    );
    for terminal in ["vim", "nvim", "/usr/bin/nano", "hx", "emacs -nw"] {
        let err = how(terminal).unwrap_err().to_string();
        assert!(err.contains("terminal"), "{terminal}: {err}");
    }
    assert!(how("frobnicate")
        .unwrap_err()
        .to_string()
        .contains("does not know"));
    assert!(how("  ").is_err());
}

#[test]
fn links_go_to_files_in_the_workspace_only() {
    let (dir, editor) = workspace(how("code").unwrap());
    let main = main_rs(&dir);
    assert_eq!(
        editor.href("src/main.rs", 3, 5).unwrap(),
        format!("vscode://file{main}:3:5")
    );
    assert_eq!(
        editor.href(&main, 1, 1).unwrap(),
        format!("vscode://file{main}:1:1")
    );
    assert!(editor.href("src/missing.rs", 1, 1).is_none());
    assert!(editor.href("../../etc/passwd", 1, 1).is_none());
    assert!(editor.href("/etc/hostname", 1, 1).is_none());

    let (dir, editor) = workspace(how("myedit {file}").unwrap());
    let href = editor.href("src/main.rs", 7, 2).unwrap();
    let main = main_rs(&dir);
    assert_eq!(
        href,
        format!("/__manage/open?token=0123abcd&amp;file={main}&amp;line=7&amp;column=2")
    );
}

#[test]
fn spans_in_rustc_and_panic_text_become_links_and_nothing_else_does() {
    let (dir, editor) = workspace(how("code").unwrap());
    let main = main_rs(&dir);
    let html = "<span style='color:#55f'>--&gt; </span>src/main.rs:2:13\n\
                thread 'main' panicked at src/main.rs:10:5:\n\
                /rustc/abc/library/core/src/ops.rs:9:1 and lib.rs: and src/gone.rs:1:1";
    let out = linkify(html, Some(&editor));
    assert!(
        out.contains(&format!(
            "<a class=\"manage-editor\" href=\"vscode://file{main}:2:13\" title=\"open in the editor\">src/main.rs:2:13</a>"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("href=\"vscode://file{main}:10:5\"")),
        "{out}"
    );
    assert_eq!(
        out.matches("<a ").count(),
        2,
        "only files in the workspace: {out}"
    );
    assert!(out.ends_with("and lib.rs: and src/gone.rs:1:1"), "{out}");
    assert_eq!(linkify(html, None), html);
}

#[tokio::test]
async fn the_open_endpoint_runs_the_editor_only_for_this_servers_pages() {
    let out_dir = tempfile::tempdir().unwrap();
    let record = out_dir.path().join("opened");
    let script = out_dir.path().join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > {}.tmp && mv {0}.tmp {0}\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let template = format!("{} {{file}} {{line}} {{column}}", script.display());
    let (dir, editor) = workspace(how(&template).unwrap());
    let main = main_rs(&dir);
    let host = "127.0.0.1:8000";
    let query = |token: &str, file: &str| format!("token={token}&file={file}&line=4&column=2");
    let headers = |pairs: &[(&'static str, &str)]| {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    };
    let ok = query("0123abcd", "src/main.rs");
    for (q, h, want) in [
        (
            query("wrong", "src/main.rs"),
            headers(&[]),
            StatusCode::FORBIDDEN,
        ),
        (
            "file=src/main.rs&line=4".to_owned(),
            headers(&[]),
            StatusCode::FORBIDDEN,
        ),
        (
            ok.clone(),
            headers(&[("origin", "http://evil.example")]),
            StatusCode::FORBIDDEN,
        ),
        (
            ok.clone(),
            headers(&[("sec-fetch-site", "cross-site")]),
            StatusCode::FORBIDDEN,
        ),
        (
            ok.clone(),
            headers(&[("sec-fetch-site", "same-site")]),
            StatusCode::FORBIDDEN,
        ),
        (
            query("0123abcd", "../../../etc/passwd"),
            headers(&[]),
            StatusCode::NOT_FOUND,
        ),
        (
            "token=0123abcd&file=src/main.rs&line=x".to_owned(),
            headers(&[]),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(editor.open(&q, &h, host).0, want, "{q} {h:?}");
    }
    assert!(!record.exists(), "a refused request started the editor");
    let same = headers(&[
        ("origin", "http://127.0.0.1:8000"),
        ("sec-fetch-site", "same-origin"),
    ]);
    assert_eq!(editor.open(&ok, &same, host).0, StatusCode::NO_CONTENT);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !record.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!("{main} 4 2\n")
    );
}
