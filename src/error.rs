//! Error helpers shared by every command.
//!
//! Commands return `anyhow::Result`. A user mistake carries a [`Hint`]: the
//! next step to take, printed by `main` below the cause chain.

use std::fmt;

/// An error that tells the user what to do next.
#[derive(Debug)]
pub struct Hint {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hint {}

/// Builds an `anyhow::Error` with a hint attached.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hint {
        message: message.into(),
        hint: hint.into(),
    })
}

/// The hint of the first [`Hint`] in the error's chain, if any.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    // `downcast_ref` sees hints attached as context; `chain` sees hints
    // that are the source of another error.
    err.downcast_ref::<Hint>()
        .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Hint>()))
        .map(|h| h.hint.as_str())
}

/// A write to a closed pipe (`manage ... | head`) is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
