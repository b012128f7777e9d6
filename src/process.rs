//! Child processes and what rbk keeps of them: building them, ending them, the tail of their stderr and the error their exit becomes.
//!
//! A leaf (tidy test): the synchronous code (`parts`, `backup`, `restore`, `stack`) runs
//! programs on this host, the sources (async) run them in containers, and both must tell the
//! user the same thing when one fails, from the same bounded tail of its stderr.

mod command;
mod exit;
mod fed;
mod tail;

pub use command::{GRACE, SECRETS, command, end_group};
pub use exit::{ExitError, ExitStatusKind};
pub use fed::FedChild;
pub use tail::StderrTail;
