//! A request rbk can tell is impossible before doing anything: its own usage errors, which exit 2 like clap's.
//!
//! Raised anywhere below the CLI (a part name that cannot be a file name, a
//! policy that would remove every snapshot) and mapped to exit code 2 by
//! `cli::exit_code_of`, so scripts see one code for "fix the command line".

/// A usage error: the message says what to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `Err(usage!("..."))`: an `anyhow::Error` carrying a [`UsageError`].
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        ::anyhow::Error::new($crate::usage::UsageError(format!($($arg)*)))
    };
}
