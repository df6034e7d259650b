//! Building: `cargo build` with JSON messages, parsed with cargo_metadata.
//!
//! The executable comes from the selected target's `compiler-artifact`
//! message. Diagnostics are printed as rustc rendered them (colour kept
//! where the terminal has colour) and kept for the browser. Cargo runs in
//! its own process group so a cancelled build ends rustc too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use cargo_metadata::diagnostic::DiagnosticLevel;
use cargo_metadata::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use super::child::Group;
use super::process::{isolate, signal_group};
use super::reaper::Reaper;
use crate::ui::Ui;

/// What to build: cargo's own flags, passed through.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub manifest_path: PathBuf,
    pub package: String,
    pub bin: String,
    pub release: bool,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
}

/// One compiler diagnostic, as rustc rendered it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub is_error: bool,
    /// rustc's rendering, with ANSI colour.
    pub rendered: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
}

#[derive(Debug)]
pub enum Outcome {
    Built {
        exe: PathBuf,
        /// Cargo did not relink the executable: nothing to restart.
        fresh: bool,
        elapsed: Duration,
    },
    Failed(Failure),
    Cancelled,
}

/// A build that did not produce the executable.
#[derive(Debug)]
pub struct Failure {
    pub diagnostics: Vec<Diagnostic>,
    /// Cargo's own error lines (manifest errors and the like).
    pub cargo_errors: Vec<String>,
    pub elapsed: Duration,
}

impl Failure {
    /// How many of the diagnostics are errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error).count()
    }
}

impl BuildSpec {
    fn command(&self, color: bool) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(
            std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        );
        cmd.arg("build")
            .arg("--message-format=json-diagnostic-rendered-ansi")
            .arg("--manifest-path")
            .arg(&self.manifest_path)
            .args(["--package", &self.package, "--bin", &self.bin])
            .arg(if color {
                "--color=always"
            } else {
                "--color=never"
            });
        if self.release {
            cmd.arg("--release");
        }
        if !self.features.is_empty() {
            cmd.arg("--features").arg(self.features.join(","));
        }
        if self.all_features {
            cmd.arg("--all-features");
        }
        if self.no_default_features {
            cmd.arg("--no-default-features");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        isolate(&mut cmd);
        cmd
    }
}

/// Runs one build. Sending on (or dropping) `cancel` ends cargo's whole
/// process group and yields [`Outcome::Cancelled`].
pub async fn build(
    spec: &BuildSpec,
    ui: &Ui,
    mut cancel: oneshot::Receiver<()>,
    reaper: &Reaper,
) -> Result<Outcome> {
    let start = Instant::now();
    let mut child = spec
        .command(ui.color())
        .spawn()
        .context("cannot run `cargo build`; is cargo on PATH?")?;
    let pgid = child.id().unwrap_or(0) as i32;
    // However this ends (even by this future being dropped), nothing of
    // cargo's group outlives it.
    let _group = Group::watch(reaper, pgid);
    let spinner = ui.spinner(format!("Building {}", spec.bin));
    if spinner.is_hidden() {
        ui.status("Building", &spec.bin);
    }

    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let mut stdout = BufReader::new(stdout).lines();
    let mut stderr = BufReader::new(stderr).lines();
    let mut stdout_open = true;
    let mut stderr_open = true;

    let mut exe = None;
    let mut fresh = true;
    let mut units = 0usize;
    let mut diagnostics = Vec::new();
    let mut cargo_errors = Vec::new();
    let mut compiling = String::new();

    while stdout_open || stderr_open {
        tokio::select! {
            _ = &mut cancel => {
                signal_group(pgid, libc::SIGKILL);
                let _ = child.wait().await;
                return Ok(Outcome::Cancelled);
            }
            line = stdout.next_line(), if stdout_open => match line {
                Ok(Some(line)) => {
                    let Ok(message) = serde_json::from_str::<Message>(&line) else {
                        continue;
                    };
                    match message {
                        Message::CompilerArtifact(artifact) => {
                            units += 1;
                            if artifact.target.name == spec.bin && artifact.target.is_bin() {
                                if let Some(path) = artifact.executable {
                                    exe = Some(path.into_std_path_buf());
                                    fresh = artifact.fresh;
                                }
                            }
                            spinner.set_message(progress(&spec.bin, &compiling, units));
                        }
                        Message::CompilerMessage(msg) => {
                            let d = msg.message;
                            let is_error = matches!(d.level, DiagnosticLevel::Error | DiagnosticLevel::Ice);
                            let Some(rendered) = d.rendered.clone() else { continue };
                            print_rendered(ui, &rendered);
                            if is_summary(&d) {
                                continue;
                            }
                            let span = d.spans.iter().find(|s| s.is_primary);
                            diagnostics.push(Diagnostic {
                                is_error,
                                rendered,
                                message: d.message.clone(),
                                file: span.map(|s| s.file_name.clone()),
                                line: span.map(|s| s.line_start),
                            });
                        }
                        _ => {}
                    }
                }
                _ => stdout_open = false,
            },
            line = stderr.next_line(), if stderr_open => match line {
                Ok(Some(line)) => {
                    let plain = console::strip_ansi_codes(&line).into_owned();
                    let trimmed = plain.trim_start();
                    if let Some(rest) = trimmed.strip_prefix("Compiling ") {
                        compiling = rest.split(' ').next().unwrap_or(rest).to_owned();
                        spinner.set_message(progress(&spec.bin, &compiling, units));
                    } else if trimmed.starts_with("Blocking waiting for file lock") {
                        ui.note(format!(
                            "cargo is waiting for another build to release the target directory ({trimmed})"
                        ));
                    } else if is_cargo_status(trimmed) || is_cargo_summary(trimmed) {
                        // Progress chatter and summaries; the spinner and
                        // our own one-line summary cover them.
                    } else {
                        if trimmed.starts_with("error") {
                            cargo_errors.push(plain.clone());
                        }
                        ui.raw_line(if ui.color() { &line } else { &plain });
                    }
                }
                _ => stderr_open = false,
            },
        }
    }
    let status = tokio::select! {
        status = child.wait() => status.context("cargo build did not finish")?,
        _ = &mut cancel => {
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
            return Ok(Outcome::Cancelled);
        }
    };
    drop(spinner);
    let elapsed = start.elapsed();
    match (status.success(), exe) {
        (true, Some(exe)) => Ok(Outcome::Built {
            exe,
            fresh,
            elapsed,
        }),
        (true, None) => Ok(Outcome::Failed(Failure {
            diagnostics,
            cargo_errors: vec![format!(
                "cargo built `{}` but reported no executable for it",
                spec.bin
            )],
            elapsed,
        })),
        (false, _) => Ok(Outcome::Failed(Failure {
            diagnostics,
            cargo_errors,
            elapsed,
        })),
    }
}

/// rustc's closing lines ("aborting due to 2 previous errors", "For more
/// information about this error, try ..."): shown in the terminal as rustc
/// shows them, but neither counted nor listed in the browser.
fn is_summary(d: &cargo_metadata::diagnostic::Diagnostic) -> bool {
    matches!(d.level, DiagnosticLevel::FailureNote)
        || (d.spans.is_empty() && d.message.starts_with("aborting due to"))
}

fn progress(bin: &str, compiling: &str, units: usize) -> String {
    if compiling.is_empty() {
        format!("Building {bin} ({units} units done)")
    } else {
        format!("Building {bin}: compiling {compiling} ({units} units done)")
    }
}

fn is_cargo_status(line: &str) -> bool {
    const WORDS: &[&str] = &[
        "Finished",
        "Checking",
        "Fresh",
        "Downloaded",
        "Downloading",
        "Locking",
        "Updating",
        "Adding",
        "Building",
        "Running",
        "Dirty",
        "Blocking",
        "Packaging",
        "Removing",
    ];
    WORDS.iter().any(|w| line.starts_with(w))
}

/// Cargo's closing lines, which repeat what the diagnostics said.
fn is_cargo_summary(line: &str) -> bool {
    line.is_empty()
        || line.starts_with("error: could not compile")
        || line.starts_with("warning: build failed")
        || (line.starts_with("warning:") && line.contains("generated"))
}

fn print_rendered(ui: &Ui, rendered: &str) {
    let text = if ui.color() {
        rendered.trim_end().to_owned()
    } else {
        console::strip_ansi_codes(rendered).trim_end().to_owned()
    };
    ui.raw_line(&text);
}

/// Files a build read, from cargo's dep-info file next to the executable
/// (`target/debug/NAME.d`). Paths in it are absolute; spaces are escaped.
pub fn dep_info(exe: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(exe.with_extension("d")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((_, deps)) = split_rule(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' | '\t' => {
                    if !current.is_empty() {
                        out.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                _ => current.push(c),
            }
        }
        if !current.is_empty() {
            out.push(PathBuf::from(current));
        }
    }
    out
}

/// Splits `target: deps` at the first unescaped `: `.
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    (0..bytes.len().saturating_sub(1)).find_map(|i| {
        (bytes[i] == b':' && bytes[i + 1] == b' ' && (i == 0 || bytes[i - 1] != b'\\'))
            .then(|| (&line[..i], &line[i + 2..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_is_parsed_with_escaped_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("app");
        std::fs::write(
            dir.path().join("app.d"),
            "/t/debug/app: /p/src/main.rs /p/src/my\\ page.html /x/shared.txt\n",
        )
        .unwrap();
        assert_eq!(
            dep_info(&exe),
            [
                PathBuf::from("/p/src/main.rs"),
                PathBuf::from("/p/src/my page.html"),
                PathBuf::from("/x/shared.txt")
            ]
        );
    }
}
