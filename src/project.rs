//! Finding the cargo project and reading `[package.metadata.manage]`.
