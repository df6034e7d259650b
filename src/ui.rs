//! All terminal output: status lines, warnings, errors, spinners.
//!
//! Status and diagnostics go to stderr, data (completions, diffs) to stdout,
//! as cargo does. Colour follows `--color`; `auto` turns it off for
//! `NO_COLOR`, `TERM=dumb` and streams that are not terminals. Spinners are
//! hidden off a terminal and under `--quiet`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The terminal. Cheap to clone; clones share the active spinner.
#[derive(Clone)]
pub struct Ui {
    verbosity: Verbosity,
    color: bool,
    stderr_tty: bool,
    active: Arc<Mutex<Option<ProgressBar>>>,
}

/// Whether `auto` colour should be on for a stream that is (or is not) a
/// terminal, given the environment.
pub fn auto_color(is_tty: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    is_tty && !no_color && !dumb
}

impl Ui {
    pub fn new(choice: impl Into<ColorChoice>, verbosity: Verbosity) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let choice = choice.into();
        let decide = |is_tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto_color(is_tty),
        };
        let color = decide(stderr_tty);
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(decide(std::io::stdout().is_terminal()));
        Ui {
            verbosity,
            color,
            stderr_tty,
            active: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether stderr shows colour; child processes (cargo) are told the same.
    pub fn color(&self) -> bool {
        self.color
    }

    fn style(&self, style: Style) -> Style {
        style.for_stderr()
    }

    /// Runs `write` with any active spinner cleared from the terminal, so
    /// output appears above it instead of tearing it.
    fn above_spinner(&self, write: impl FnOnce()) {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        match active.as_ref() {
            Some(pb) if !pb.is_hidden() => pb.suspend(write),
            _ => write(),
        }
    }

    /// Writes a line to stderr without tearing an active spinner.
    pub fn raw_line(&self, line: &str) {
        self.above_spinner(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    /// Writes raw bytes (a child's output) to stderr as they come.
    pub fn raw_bytes(&self, bytes: &[u8]) {
        self.above_spinner(|| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes);
            let _ = err.flush();
        });
    }

    /// Writes a child's stdout line to our stdout, as it comes.
    pub fn child_stdout(&self, bytes: &[u8]) {
        self.above_spinner(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        });
    }

    /// One access-log line, as Django's runserver prints it, coloured by
    /// status class. Hidden by `--quiet`.
    pub fn access_log(
        &self,
        method: &str,
        path: &str,
        version: hyper::Version,
        status: u16,
        size: Option<u64>,
    ) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let line = format!(
            "[{}] \"{method} {path} {version:?}\" {status} {}",
            log_time(std::time::SystemTime::now()),
            size.map_or_else(|| "-".to_owned(), |s| s.to_string())
        );
        let style = match status {
            304 => Style::new().dim(),
            300..=399 => Style::new().cyan(),
            400..=499 => Style::new().yellow(),
            500..=599 => Style::new().red().bold(),
            _ => Style::new(),
        };
        self.raw_line(&self.style(style).apply_to(line).to_string());
    }

    /// A cargo-style status line: a right-aligned green verb, then the message.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let verb = self
            .style(Style::new().green().bold())
            .apply_to(format!("{verb:>12}"));
        self.raw_line(&format!("{verb} {message}"));
    }

    /// Like [`Ui::status`] but only with `--verbose`.
    pub fn verbose(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Verbose {
            let verb = self
                .style(Style::new().cyan().bold())
                .apply_to(format!("{verb:>12}"));
            self.raw_line(&format!("{verb} {message}"));
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        let label = self.style(Style::new().yellow().bold()).apply_to("warning");
        self.raw_line(&format!("{label}: {message}"));
    }

    pub fn note(&self, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let label = self.style(Style::new().cyan().bold()).apply_to("note");
        self.raw_line(&format!("{label}: {message}"));
    }

    /// A plain line of prose (next steps, summaries), hidden by `--quiet`.
    pub fn info(&self, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.raw_line(&message.to_string());
        }
    }

    /// A styled word for use inside messages (bold, stderr colour rules).
    pub fn bold(&self, text: impl std::fmt::Display) -> String {
        self.style(Style::new().bold()).apply_to(text).to_string()
    }

    /// Colours a piece of text as success, failure or neutral.
    pub fn paint(&self, text: impl std::fmt::Display, tone: Tone) -> String {
        let style = match tone {
            Tone::Good => Style::new().green(),
            Tone::Bad => Style::new().red().bold(),
            Tone::Warn => Style::new().yellow(),
            Tone::Dim => Style::new().dim(),
        };
        self.style(style).apply_to(text).to_string()
    }

    /// Prints an error with its cause chain and hint, as cargo does.
    pub fn error(&self, err: &anyhow::Error) {
        let label = self.style(Style::new().red().bold()).apply_to("error");
        let mut text = format!("{label}: {err}");
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        if !causes.is_empty() {
            text.push_str("\n\nCaused by:");
            for cause in causes {
                for line in cause.lines() {
                    text.push_str("\n  ");
                    text.push_str(line);
                }
            }
        }
        if let Some(hint) = crate::error::hint_of(err) {
            let help = self.style(Style::new().cyan().bold()).apply_to("help");
            text.push_str(&format!("\n{help}: {hint}"));
        }
        self.raw_line(&text);
    }

    /// Data for stdout (completions, diffs).
    pub fn out(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// A spinner on stderr, hidden off a terminal and under `--quiet`. While
    /// it lives, lines printed through this `Ui` appear above it.
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        let pb = if self.stderr_tty && self.verbosity != Verbosity::Quiet {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {msg}")
                    .expect("static template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            pb.enable_steady_tick(Duration::from_millis(100));
            pb
        } else {
            ProgressBar::hidden()
        };
        self.attach(pb, message.into())
    }

    /// Makes `pb` the live indicator, so that printed lines appear above it.
    fn attach(&self, pb: ProgressBar, message: String) -> Spinner {
        pb.set_message(message);
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb.clone());
        Spinner {
            pb,
            active: self.active.clone(),
        }
    }

    /// A progress bar of `len` steps on stderr, with the same rules as
    /// [`Ui::spinner`]; advance it with [`Spinner::inc`].
    pub fn bar(&self, len: u64, message: impl Into<String>) -> Spinner {
        let pb = if self.stderr_tty && self.verbosity != Verbosity::Quiet {
            let pb = ProgressBar::new(len);
            pb.set_style(
                ProgressStyle::with_template("{msg:>12.cyan.bold} [{bar:40}] {pos}/{len} {eta}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            pb
        } else {
            ProgressBar::hidden()
        };
        self.attach(pb, message.into())
    }
}

/// `25/Nov/2026 19:32:26` (UTC), the access-log time format.
pub fn log_time(at: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = Utc::from_unix(secs);
    format!(
        "{:02}/{}/{} {:02}:{:02}:{:02}",
        t.day,
        MONTHS[(t.month - 1) as usize],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// A Unix time as a UTC calendar date and time (no time-zone database).
pub struct Utc {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Utc {
    pub fn from_unix(secs: u64) -> Utc {
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Dim,
}

/// A running spinner; cleared from the terminal when dropped.
pub struct Spinner {
    pb: ProgressBar,
    active: Arc<Mutex<Option<ProgressBar>>>,
}

impl Spinner {
    pub fn set_message(&self, message: impl Into<String>) {
        self.pb.set_message(message.into());
    }

    pub fn is_hidden(&self) -> bool {
        self.pb.is_hidden()
    }

    /// Advances a bar made by [`Ui::bar`].
    pub fn inc(&self, n: u64) {
        self.pb.inc(n);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.pb.finish_and_clear();
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        *active = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_635_146);
        assert_eq!(log_time(t), "25/Nov/2026 19:32:26");
        assert_eq!(log_time(std::time::UNIX_EPOCH), "01/Jan/1970 00:00:00");
    }
}
