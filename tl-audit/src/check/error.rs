//! [`CheckError`]: why an input could not be read (the CLI's exit status 2).

use core::fmt;
use std::io;

/// Why an input could not be read. The CLI exits with status 2.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckError {
    /// Reading failed.
    Read {
        /// The line being read.
        line: usize,
        /// The error.
        source: io::Error,
    },
    /// The input holds no event.
    Empty,
    /// A line is longer than the limit.
    LineTooLong {
        /// The line.
        line: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A line is not UTF-8 (a binary file, or a corrupted log).
    NotUtf8 {
        /// The line.
        line: usize,
        /// The byte offset of the first invalid byte in the line.
        offset: usize,
    },
    /// A line is not valid JSON.
    NotJson {
        /// The line.
        line: usize,
        /// 1-based column where parsing failed.
        column: usize,
        /// The parser's explanation.
        reason: String,
        /// The line ends in the middle of a value (a truncated write).
        truncated: bool,
    },
    /// A line is valid JSON but not an object.
    NotObject {
        /// The line.
        line: usize,
        /// What it is instead (`"an array"`, `"a number"`, ...).
        found: &'static str,
    },
    /// The `total` event of an auditor's shutdown summary has a count that
    /// is missing or not a non-negative integer, or counts by kind that do
    /// not add up to its `findings`: its verdict cannot be trusted.
    BadSummary {
        /// The line.
        line: usize,
        /// The field at fault.
        field: &'static str,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { line, source } => write!(f, "line {line}: read error: {source}"),
            Self::Empty => f.write_str(
                "no events: expected JSON lines written by tracing-subscriber's JSON formatter (pass --allow-empty if an empty log is fine)",
            ),
            Self::LineTooLong { line, limit } => {
                write!(f, "line {line}: longer than {limit} bytes; not a tracing event")
            }
            Self::NotUtf8 { line, offset } => write!(
                f,
                "line {line}: invalid UTF-8 at byte {offset}; is this a binary file?"
            ),
            Self::NotJson {
                line,
                column,
                reason,
                truncated: true,
            } => write!(
                f,
                "line {line}: truncated JSON (ends at column {column}): {reason}; was the log cut off mid-write?"
            ),
            Self::NotJson {
                line,
                column,
                reason,
                truncated: false,
            } => write!(f, "line {line}, column {column}: not JSON: {reason}"),
            Self::NotObject { line, found } => write!(
                f,
                "line {line}: expected a JSON object (one tracing event), found {found}"
            ),
            Self::BadSummary { line, field } => write!(
                f,
                "line {line}: the auditor's shutdown summary has a bad `{field}` (missing, not a non-negative integer, or not the sum of the counts by kind); was the log rewritten?"
            ),
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
