//! Editor links: each `FILE:LINE:COL` of the workspace in the error page,
//! the overlay and the crash page opens the file there in the developer's
//! editor.
//!
//! `MANAGE_EDITOR` (else `EDITOR`) names the editor. Editors with a URL
//! scheme (VS Code, VSCodium, Cursor, Windsurf, Zed) get `scheme://file...`
//! links the browser hands over; the others are started by manage itself
//! from `/__manage/open`, which only a page of this dev server can use: the
//! link carries a token made for this run, and a request with another
//! origin (`Origin`, `Sec-Fetch-Site`), for a file outside the workspace or
//! without the token is refused. A template with `{file}`, `{line}` and
//! `{column}` names any other editor (a URL if it starts with a scheme,
//! else a command, split at spaces, run without a shell). Terminal editors
//! (vim, nano, helix...) cannot be opened from a browser: no links.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use hyper::header::{self, HeaderMap};
use hyper::StatusCode;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::error::hinted;
use crate::settings::RESERVED_PREFIX;

/// What a path keeps of itself in a URL.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// How the editor is reached.
#[derive(Debug, Clone, PartialEq)]
enum How {
    /// A URL template the browser opens.
    Url(String),
    /// A command template manage runs.
    Command(Vec<String>),
}

#[derive(Debug)]
pub struct Editor {
    how: How,
    /// The workspace: the only files linked or opened.
    root: PathBuf,
    token: String,
}

/// Editors that run in a terminal: a browser cannot open them.
const TERMINAL: &[&str] = &[
    "vi", "vim", "nvim", "nano", "hx", "helix", "micro", "kak", "ne", "joe", "ed", "mg", "pico",
];

impl Editor {
    /// From `MANAGE_EDITOR` (an unusable one is an error) or `EDITOR` (an
    /// unusable one means no links); `None` without either.
    pub fn from_env(root: &Path) -> Result<Option<Editor>> {
        let manage = std::env::var("MANAGE_EDITOR").ok();
        let editor = std::env::var("EDITOR").ok();
        let how = match manage.as_deref().map(str::trim) {
            Some("" | "none") => None,
            Some(value) => Some(how(value).map_err(|why| {
                hinted(
                    format!("MANAGE_EDITOR=`{value}`: {why}"),
                    "name an editor (`vscode`, `zed`, `emacsclient`, `rustrover`...), give a \
                     template with {file} and {line} (`myedit +{line} {file}`, \
                     `myscheme://open?path={file}&line={line}`), or unset it",
                )
            })?),
            None => editor.as_deref().and_then(|value| how(value).ok()),
        };
        let Some(how) = how else { return Ok(None) };
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Editor {
            how,
            root: root.to_path_buf(),
            token,
        }))
    }

    /// The link for `file` (as rustc prints it: relative to the workspace,
    /// or absolute) at `line`/`column`, already escaped for an attribute;
    /// `None` for a file outside the workspace or not on disk.
    pub fn href(&self, file: &str, line: u32, column: u32) -> Option<String> {
        let path = self.inside(file)?;
        let link = match &self.how {
            How::Url(template) => fill(
                template,
                &utf8_percent_encode(&path.to_string_lossy(), PATH).to_string(),
                line,
                column,
            ),
            How::Command(_) => format!(
                "{RESERVED_PREFIX}open?token={}&file={}&line={line}&column={column}",
                self.token,
                utf8_percent_encode(&path.to_string_lossy(), PATH)
            ),
        };
        Some(link.replace('&', "&amp;").replace('"', "&quot;"))
    }

    /// `file` as a path in the workspace that exists, or `None`.
    fn inside(&self, file: &str) -> Option<PathBuf> {
        let path = self.root.join(file).canonicalize().ok()?;
        let root = self.root.canonicalize().ok()?;
        (path.starts_with(&root) && path.is_file()).then_some(path)
    }

    /// `/__manage/open?QUERY`: checks the request, then starts the editor.
    /// `host` is the request's (already allowed) host.
    pub fn open(&self, query: &str, headers: &HeaderMap, host: &str) -> (StatusCode, String) {
        let How::Command(template) = &self.how else {
            return (
                StatusCode::NOT_FOUND,
                "manage: the editor opens links itself\n".into(),
            );
        };
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let same_site = matches!(
            header(header::HeaderName::from_static("sec-fetch-site")),
            None | Some("same-origin" | "none")
        );
        let origin_ok = header(header::ORIGIN)
            .is_none_or(|origin| origin.strip_prefix("http://").is_some_and(|o| o == host));
        let param = |name: &str| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
            })
        };
        let token_ok =
            param("token").is_some_and(|t| constant_eq(t.as_bytes(), self.token.as_bytes()));
        if !(same_site && origin_ok && token_ok) {
            return (
                StatusCode::FORBIDDEN,
                "manage: refused: editor links work only from this dev server's own pages\n".into(),
            );
        }
        let number = |name| {
            param(name)
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|n| *n > 0)
        };
        let (Some(file), Some(line)) = (param("file"), number("line")) else {
            return (
                StatusCode::BAD_REQUEST,
                "manage: `file` and `line` are needed\n".into(),
            );
        };
        let Some(path) = self.inside(&file) else {
            return (
                StatusCode::NOT_FOUND,
                "manage: no such file in the workspace\n".into(),
            );
        };
        let column = number("column").unwrap_or(1);
        let path = path.to_string_lossy();
        let args: Vec<String> = template
            .iter()
            .map(|a| fill(a, &path, line, column))
            .collect();
        match launch(&args) {
            Ok(()) => (StatusCode::NO_CONTENT, String::new()),
            Err(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("manage: cannot start the editor `{}`: {err}\n", args[0]),
            ),
        }
    }
}

/// How `value` (a name, a command or a template) reaches an editor.
fn how(value: &str) -> Result<How> {
    let value = value.trim();
    if value.contains("{file}") {
        let scheme = value.split_once("://").map(|(s, _)| s);
        if scheme.is_some_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }) {
            return Ok(How::Url(value.to_owned()));
        }
        return Ok(How::Command(
            value.split_whitespace().map(str::to_owned).collect(),
        ));
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    let Some(first) = words.first() else {
        bail!("it is empty")
    };
    let name = Path::new(first)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let url = |scheme: &str| {
        Ok(How::Url(format!(
            "{scheme}://file{{file}}:{{line}}:{{column}}"
        )))
    };
    let command = |tail: &[&str]| {
        let mut all: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        all.extend(tail.iter().map(|w| (*w).to_owned()));
        Ok(How::Command(all))
    };
    match name.as_str() {
        "vscode" | "code" => url("vscode"),
        "code-insiders" | "vscode-insiders" => url("vscode-insiders"),
        "vscodium" | "codium" => url("vscodium"),
        "cursor" => url("cursor"),
        "windsurf" => url("windsurf"),
        "zed" | "zeditor" => url("zed"),
        "emacsclient" => command(&["-n", "+{line}:{column}", "{file}"]),
        "emacs" if !words.contains(&"-nw") => command(&["+{line}:{column}", "{file}"]),
        "gvim" | "mvim" => command(&["--remote-silent", "+{line}", "{file}"]),
        "subl" | "sublime_text" => command(&["{file}:{line}:{column}"]),
        "idea" | "rustrover" | "clion" | "pycharm" | "webstorm" => {
            command(&["--line", "{line}", "--column", "{column}", "{file}"])
        }
        "kate" => command(&["--line", "{line}", "--column", "{column}", "{file}"]),
        "gedit" | "gnome-text-editor" => command(&["+{line}:{column}", "{file}"]),
        name if TERMINAL.contains(&name) || name == "emacs" => {
            bail!("`{name}` runs in a terminal, which a link in the browser cannot open")
        }
        name => bail!("manage does not know how `{name}` opens a file at a line"),
    }
}

fn fill(template: &str, file: &str, line: u32, column: u32) -> String {
    template
        .replace("{file}", file)
        .replace("{line}", &line.to_string())
        .replace("{column}", &column.to_string())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts the editor in a process group of its own (Ctrl-C to manage does
/// not reach it, and it may outlive manage: it is the developer's), with
/// no terminal, reaped when it exits.
fn launch(args: &[String]) -> std::io::Result<()> {
    use std::process::Stdio;
    let mut child = tokio::process::Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

/// `html` (escaped text with tags) with every `FILE.rs:LINE[:COL]` in its
/// text, outside tags, made a link when `editor` has one for it.
pub fn linkify(html: &str, editor: Option<&Editor>) -> String {
    let Some(editor) = editor else {
        return html.to_owned();
    };
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(".rs:") {
        // The path: the run of path characters before `.rs:`, in text.
        let before = &rest[..at];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "/._-~".contains(c)))
            .map_or(0, |i| i + 1);
        let tail = &rest[at + 4..];
        let line_len = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let in_tag = before.rfind('<') > before.rfind('>');
        let line: Option<u32> = tail[..line_len].parse().ok();
        let (column, col_len) = match tail[line_len..].strip_prefix(':') {
            Some(after) => {
                let n = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                (after[..n].parse().ok(), if n > 0 { n + 1 } else { 0 })
            }
            None => (None, 0),
        };
        let end = at + 4 + line_len + col_len;
        let file = &rest[start..at + 3];
        let href = match line {
            Some(line) if !in_tag && start < at => editor.href(file, line, column.unwrap_or(1)),
            _ => None,
        };
        match href {
            Some(href) => {
                out.push_str(&rest[..start]);
                out.push_str(&format!(
                    "<a class=\"manage-editor\" href=\"{href}\" title=\"open in the editor\">{}</a>",
                    &rest[start..end]
                ));
                rest = &rest[end..];
            }
            None => {
                out.push_str(&rest[..at + 4]);
                rest = &rest[at + 4..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "editor/tests.rs"]
mod tests;
