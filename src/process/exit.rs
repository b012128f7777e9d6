//! `ExitError`: a child that exited non-zero or was killed, named, with the tail of its stderr.

use std::fmt;
use std::process::ExitStatus;

/// How a child ended, as far as its failure message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatusKind {
    /// It exited with this status. `i64`, as the Docker engine reports an exec's or a
    /// container's status (`-1` when it reports none).
    Code(i64),
    /// It was killed by this signal.
    Signal(i32),
    /// Neither a status nor a signal (a stopped or continued child, which rbk never waits for).
    Unknown,
}

impl From<ExitStatus> for ExitStatusKind {
    fn from(status: ExitStatus) -> ExitStatusKind {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatusKind::Code(i64::from(code)),
            (None, Some(signal)) => ExitStatusKind::Signal(signal),
            _ => ExitStatusKind::Unknown,
        }
    }
}

impl fmt::Display for ExitStatusKind {
    /// The verb phrase of the failure sentence: "`pg_dump` exited with status 1".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatusKind::Code(code) => write!(f, "exited with status {code}"),
            ExitStatusKind::Signal(signal) => write!(f, "was killed by signal {signal}"),
            ExitStatusKind::Unknown => f.write_str("failed"),
        }
    }
}

/// A child that did not succeed: "`what` exited with status N; its stderr ended with:" and
/// the tail on the lines after it (no tail: the sentence ends after the status). One type for
/// host processes and container commands alike, so a failed producer reads the same wherever
/// it ran, and callers can find it in an error's chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {status}{}", TailSuffix(tail))]
pub struct ExitError {
    /// The subject of the sentence, as it reads there: a command in backticks
    /// ("`pg_dump -Fp db`"), or a phrase ("the one-off container").
    pub what: String,
    pub status: ExitStatusKind,
    /// The last lines of its stderr ([`StderrTail::text`](super::StderrTail::text)).
    pub tail: String,
}

impl ExitError {
    /// The `ExitError` in `e`'s chain, if a child's exit is what failed: for a caller that
    /// words the failure its own way.
    pub fn find(e: &anyhow::Error) -> Option<&ExitError> {
        e.chain().find_map(|c| c.downcast_ref())
    }

    /// The failure of the command `cmd`, shown in backticks.
    pub fn command(cmd: &str, status: impl Into<ExitStatusKind>, tail: String) -> ExitError {
        ExitError {
            what: format!("`{cmd}`"),
            status: status.into(),
            tail,
        }
    }
}

/// "; its stderr ended with:\n" and the tail, or nothing for an empty tail.
struct TailSuffix<'a>(&'a str);

impl fmt::Display for TailSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "; its stderr ended with:\n{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_names_the_command_the_status_and_the_tail() {
        let e = ExitError::command("pg_dump db", ExitStatusKind::Code(1), "no such db".into());
        assert_eq!(
            e.to_string(),
            "`pg_dump db` exited with status 1; its stderr ended with:\nno such db"
        );
        let e = ExitError::command("sh -c x", ExitStatusKind::Signal(9), String::new());
        assert_eq!(e.to_string(), "`sh -c x` was killed by signal 9");
        let e = ExitError {
            what: "the one-off container".into(),
            status: ExitStatusKind::Unknown,
            tail: String::new(),
        };
        assert_eq!(e.to_string(), "the one-off container failed");
    }

    #[test]
    fn found_under_the_context_a_caller_added() {
        let failed = ExitError::command("psql", ExitStatusKind::Code(3), "ERROR".into());
        let e = anyhow::Error::new(failed.clone()).context("restoring postgres");
        assert_eq!(ExitError::find(&e), Some(&failed));
        assert_eq!(ExitError::find(&anyhow::anyhow!("no exit")), None);
    }

    #[test]
    fn a_status_from_the_os_says_code_or_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            ExitStatusKind::from(ExitStatus::from_raw(3 << 8)),
            ExitStatusKind::Code(3)
        );
        assert_eq!(
            ExitStatusKind::from(ExitStatus::from_raw(9)),
            ExitStatusKind::Signal(9)
        );
    }
}
