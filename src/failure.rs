//! Why a command failed, and how that is told: one line on standard error and an exit
//! status (1 failure, 2 bad usage).

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;

use smsreport_core::StoreError;

/// A command's failure.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage (exit 2).
    Usage(String),
    /// The store failed or refused (exit 1).
    Store(StoreError),
    /// Reading or writing failed (exit 1; a closed standard output exits quietly).
    Io { context: String, source: io::Error },
    /// Something that should not happen (exit 1).
    Other(String),
}

impl Failure {
    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>, source: io::Error) -> Failure {
        Failure::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is a write to a pipe whose reader has gone (`smsreport … | head`).
    fn is_broken_pipe(&self) -> bool {
        matches!(self, Failure::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// The one line that tells what went wrong, with every cause.
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(m) | Failure::Other(m) => m.clone(),
            Failure::Store(e) => with_causes(e),
            Failure::Io { context, source } => format!("{context}: {}", with_causes(source)),
        }
    }

    /// Prints the failure and gives the exit status.
    pub fn report(self) -> ExitCode {
        if self.is_broken_pipe() {
            return ExitCode::SUCCESS;
        }
        let _ = writeln!(io::stderr(), "smsreport: {}", self.message());
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

/// Writing the output: a closed pipe ends the command quietly (see [`Failure::report`]).
impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::io("writing the output", e)
    }
}

/// An error's message followed by each cause that its message does not already include,
/// on one line.
fn with_causes(e: &dyn Error) -> String {
    smsreport_core::causes::with_causes(e).replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_name_their_whole_chain_once() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("disk on fire")
            }
        }
        impl Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("io error")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let f = Failure::Store(StoreError::backend("writing a batch", Outer(Inner)));
        assert_eq!(f.message(), "writing a batch: io error: disk on fire");
    }
}
