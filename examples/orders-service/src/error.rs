//! [`Error`]: why a run could not start or finish. (Why one order failed is
//! an [`OrderError`](crate::order::OrderError), part of the story, not this.)

use core::fmt;
use std::io;

use tl_audit::AuditError;

/// A run could not start or finish; each variant says what was being done.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed (temporary directory, runtime, socket).
    Io(&'static str, io::Error),
    /// SQLite failed while setting up.
    Database(&'static str, rusqlite::Error),
    /// The pool's connections did not all open in time.
    PoolNotReady {
        /// Connections open when it gave up.
        open: u32,
        /// Connections wanted.
        wanted: u32,
    },
    /// The auditor could not be installed or finished.
    Audit(AuditError),
    /// The load generator's HTTP client failed outside a request's outcome
    /// (building the client, the reload).
    Http(&'static str, reqwest::Error),
    /// The server answered the reload with an error status.
    Reload(u16),
    /// `GET /metrics` answered something that is not Prometheus text.
    Scrape(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(what, e) => write!(f, "{what}: {e}"),
            Self::Database(what, e) => write!(f, "{what}: {e}"),
            Self::PoolNotReady { open, wanted } => write!(
                f,
                "the connection pool opened {open} of {wanted} connections in time"
            ),
            Self::Audit(e) => write!(f, "auditor: {e}"),
            Self::Http(what, e) => write!(f, "{what}: {e}"),
            Self::Reload(status) => write!(f, "POST /admin/reload answered {status}"),
            Self::Scrape(line) => write!(f, "GET /metrics: not Prometheus text at {line}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, e) => Some(e),
            Self::Database(_, e) => Some(e),
            Self::Audit(e) => Some(e),
            Self::Http(_, e) => Some(e),
            Self::PoolNotReady { .. } | Self::Reload(_) | Self::Scrape(_) => None,
        }
    }
}

impl From<AuditError> for Error {
    fn from(e: AuditError) -> Self {
        Self::Audit(e)
    }
}
