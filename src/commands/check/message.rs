//! One finding of `manage check`: a stable id, a level, and three things a
//! reader needs (what is wrong, why it matters, what fixes it).

use serde::Serialize;

/// Ordered: a `--fail-level` fails on its level and everything above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `manage.E001`, never reused for another meaning.
    pub id: &'static str,
    pub level: Level,
    /// What is wrong, with the offending value.
    pub message: String,
    /// Why it matters.
    pub why: String,
    /// The setting (or command) that fixes it.
    pub fix: String,
}

impl Message {
    pub fn new(
        id: &'static str,
        message: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Message {
        let level = match id.as_bytes().get(7) {
            Some(b'E') => Level::Error,
            Some(b'W') => Level::Warning,
            _ => Level::Info,
        };
        Message {
            id,
            level,
            message: message.into(),
            why: why.into(),
            fix: fix.into(),
        }
    }

    /// The text form: `manage.W001 (warning): ...` with indented why/fix.
    pub fn text(&self) -> String {
        format!(
            "{} ({}): {}\n    why: {}\n    fix: {}\n",
            self.id,
            self.level.label(),
            self.message,
            self.why,
            self.fix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_follows_the_id() {
        assert_eq!(Message::new("manage.E001", "", "", "").level, Level::Error);
        assert_eq!(
            Message::new("manage.W010", "", "", "").level,
            Level::Warning
        );
        assert_eq!(Message::new("manage.I001", "", "", "").level, Level::Info);
        assert!(Level::Info < Level::Warning && Level::Warning < Level::Error);
    }
}
