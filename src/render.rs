//! Templates: embedded in the binary, rendered with minijinja.
//!
//! A file whose name ends in `.jinja` is rendered and the suffix dropped;
//! any other file is copied byte for byte. Path components may themselves
//! contain template expressions (`{{ project_name }}.service.jinja`). Every
//! rendered path is checked so that nothing can land outside the output
//! directory. Undefined variables are errors, never empty strings.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use include_dir::{include_dir, Dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// Every template shipped with manage, compiled into the binary.
pub static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The suffix that marks a file to be rendered rather than copied.
pub const TEMPLATE_SUFFIX: &str = ".jinja";

/// One file of a template tree, before rendering.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the template root, `/`-separated.
    pub path: String,
    pub contents: Vec<u8>,
    /// Unix permission bits to give the output (e.g. for scripts).
    pub mode: Option<u32>,
}

/// One rendered file, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the output directory; never absolute, never `..`.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: Option<u32>,
}

/// A minijinja environment configured the same way for every template:
/// strict undefined, no auto-escaping (callers validate their values),
/// trailing newlines kept, block tags trimmed.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env
}

/// The files of an embedded template directory (e.g. `startproject`).
pub fn embedded_tree(name: &str) -> Result<Vec<SourceFile>> {
    let dir = TEMPLATES
        .get_dir(name)
        .with_context(|| format!("built-in template `{name}` is missing"))?;
    let mut files = Vec::new();
    collect_embedded(dir, Path::new(name), &mut files);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn collect_embedded(dir: &Dir<'static>, root: &Path, out: &mut Vec<SourceFile>) {
    for file in dir.files() {
        let rel = file.path().strip_prefix(root).unwrap_or(file.path());
        out.push(SourceFile {
            path: rel.to_string_lossy().replace('\\', "/"),
            contents: file.contents().to_vec(),
            mode: None,
        });
    }
    for sub in dir.dirs() {
        collect_embedded(sub, root, out);
    }
}

/// The text of one embedded template, e.g. `runserver/livereload.js`.
pub fn embedded_text(path: &str) -> Result<&'static str> {
    TEMPLATES
        .get_file(path)
        .and_then(|f| f.contents_utf8())
        .with_context(|| format!("built-in template `{path}` is missing or not UTF-8"))
}

/// Renders one embedded `.jinja` template with `ctx`.
pub fn render_embedded(path: &str, ctx: &Value) -> Result<String> {
    let env = environment();
    let tmpl = env
        .template_from_named_str(path, embedded_text(path)?)
        .map_err(jinja_error)?;
    tmpl.render(ctx).map_err(jinja_error)
}

/// Renders a whole tree. All errors are collected and reported together;
/// nothing is returned unless every file rendered.
pub fn render_tree(files: &[SourceFile], ctx: &Value) -> Result<Vec<OutputFile>> {
    let env = environment();
    let mut out: Vec<OutputFile> = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        match render_file(&env, file, ctx) {
            Ok(rendered) => out.push(rendered),
            Err(err) => problems.push(format!("{}: {err:#}", file.path)),
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for (i, f) in out.iter().enumerate() {
        if let Some(j) = seen.insert(f.path.clone(), i) {
            problems.push(format!(
                "`{}` and `{}` both render to `{}`",
                files[j].path,
                files[i].path,
                f.path.display()
            ));
        }
    }
    if !problems.is_empty() {
        bail!("the template has errors:\n  {}", problems.join("\n  "));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn render_file(env: &Environment<'_>, file: &SourceFile, ctx: &Value) -> Result<OutputFile> {
    let mut rel = String::new();
    for (i, component) in file.path.split('/').enumerate() {
        let name = if component.contains("{{") || component.contains("{%") {
            env.render_str(component, ctx)
                .with_context(|| format!("cannot render file name `{component}`"))?
        } else {
            component.to_owned()
        };
        if i > 0 {
            rel.push('/');
        }
        rel.push_str(&name);
    }
    let is_template = rel.ends_with(TEMPLATE_SUFFIX);
    if is_template {
        rel.truncate(rel.len() - TEMPLATE_SUFFIX.len());
    }
    let path = safe_relative_path(&rel)?;
    let contents = if is_template {
        let text = std::str::from_utf8(&file.contents)
            .context("a `.jinja` template must be UTF-8 text")?;
        let tmpl = env
            .template_from_named_str(&file.path, text)
            .map_err(jinja_error)?;
        tmpl.render(ctx).map_err(jinja_error)?.into_bytes()
    } else {
        file.contents.clone()
    };
    Ok(OutputFile {
        path,
        contents,
        mode: file.mode,
    })
}

/// minijinja's `{:#}` includes the offending source line; keep it.
fn jinja_error(err: minijinja::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:#}")
}

/// Accepts a relative, `/`-separated path that stays inside its root: no
/// absolute paths, no `..`, no empty or `.` components, no backslashes or
/// NUL bytes.
pub fn safe_relative_path(rel: &str) -> Result<PathBuf> {
    if rel.is_empty() {
        bail!("renders to an empty file name");
    }
    if rel.contains('\0') {
        bail!("file name `{}` contains a NUL byte", rel.escape_debug());
    }
    if rel.contains('\\') {
        bail!("file name `{rel}` contains a backslash");
    }
    if rel.starts_with('/') {
        bail!("file name `{rel}` is an absolute path; template paths must stay inside the project");
    }
    let path = PathBuf::from(rel);
    for component in rel.split('/') {
        match component {
            "" => bail!("file name `{rel}` has an empty path component"),
            "." => bail!("file name `{rel}` contains a `.` component"),
            ".." => bail!(
                "file name `{rel}` contains `..`; template paths must stay inside the project"
            ),
            _ => {}
        }
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("file name `{rel}` is not a plain relative path");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
            mode: None,
        }
    }

    #[test]
    fn renders_templates_and_copies_the_rest() {
        let ctx = minijinja::context! { name => "blog" };
        let out = render_tree(
            &[
                src("a.txt.jinja", "hi {{ name }}\n"),
                src("{{ name }}/b.rs", "{{ raw }}"),
            ],
            &ctx,
        )
        .unwrap();
        assert_eq!(out[0].path, PathBuf::from("a.txt"));
        assert_eq!(out[0].contents, b"hi blog\n");
        assert_eq!(out[1].path, PathBuf::from("blog/b.rs"));
        assert_eq!(out[1].contents, b"{{ raw }}");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let err =
            render_tree(&[src("a.jinja", "{{ nope }}")], &minijinja::context! {}).unwrap_err();
        assert!(format!("{err:#}").contains("undefined"), "{err:#}");
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in ["../x", "/etc/x", "a/../../x", "a//b", "./a", "a\\b", "a\0b"] {
            assert!(safe_relative_path(bad).is_err(), "{bad:?} accepted");
        }
        let ctx = minijinja::context! { up => ".." };
        assert!(render_tree(&[src("{{ up }}/x", "")], &ctx).is_err());
    }

    #[test]
    fn every_embedded_template_parses() {
        let env = environment();
        for tree in ["startproject", "runserver", "deploy"] {
            for file in embedded_tree(tree).unwrap() {
                if file.path.ends_with(TEMPLATE_SUFFIX) {
                    let text = std::str::from_utf8(&file.contents).unwrap();
                    env.template_from_str(text)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", file.path));
                }
            }
        }
    }
}
