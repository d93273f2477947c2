//! Reading findings back from JSON logs: the core of `tl-audit check FILE`,
//! for CI jobs that run services rather than `cargo test`. Needs the `cli`
//! feature (off by default, so a service that embeds the auditor compiles
//! no JSON parser).
//!
//! The input is what `tracing-subscriber`'s JSON formatter writes, one event
//! per line:
//!
//! ```text
//! {"timestamp":"...","level":"WARN","fields":{"message":"THREAD-LOCAL LEAK: ...","kind":"unreleased",...},"target":"tl_audit"}
//! ```
//!
//! (with `flatten_event(true)`, the fields sit at the top level; both forms
//! are read). A line counts as an event if it is a JSON object with a
//! `level` and `fields` (flattened: a `level` and a `message` or `target`);
//! other JSON objects are skipped, so a JSON file that holds no event is an
//! error, not a clean log. A finding is a `tl_audit` event with a `kind`
//! field, or, in a log written without targets (`with_target(false)`), an
//! event whose message starts with [`LEAK_PREFIX`](crate::LEAK_PREFIX) and
//! that has a `kind`. Other events are skipped, except the `total` event of
//! the auditor's shutdown summary, whose counts are read into
//! [`CheckOutcome::totals`]: the rate limiter withholds some finding events
//! from the log, and only the summary counts them. Blank lines are skipped.
//! Anything else that is not a JSON object is an error naming its line: a
//! log that cannot be read must not pass CI.
//!
//! # Layers
//! One file per job, from the bottom up; each uses only those above it in
//! this list (and `crate::{record, summary, emit, finding}`):
//! - `options`: [`CheckOptions`], what to accept. Uses nothing.
//! - `error`: [`CheckError`], why an input is unreadable (exit 2). Uses nothing.
//! - `lines`: reads one bounded line, skips a byte-order mark, decodes
//!   UTF-8. Uses `error`.
//! - `totals`: [`AuditTotals`], a shutdown summary's counts cross-checked
//!   and summed. Uses nothing of this module.
//! - `event`: parses a line's JSON into a finding, a summary's counts, or
//!   neither. Uses `error`, `totals`.
//! - `outcome`: [`CheckOutcome`] and [`LoggedFinding`], and the verdict
//!   ([`CheckOutcome::exit_status`]). Uses `totals`.
//! - `table`: [`render_table`], the report for a terminal. Uses `outcome`.
//! - this file: [`check`], which drives `lines` -> `event` -> `outcome`.
//!
//! The command line itself (arguments, files, printing) is the binary's
//! (`src/bin/tl-audit/`), which uses only this module's public API.

mod error;
mod event;
mod lines;
mod options;
mod outcome;
mod table;
mod totals;

#[cfg(test)]
mod tests;

use std::io::BufRead;

pub use error::CheckError;
pub use options::{CheckOptions, DEFAULT_MAX_LINE_BYTES};
pub use outcome::{CheckOutcome, LoggedFinding};
pub use table::render_table;
pub use totals::AuditTotals;

use event::Parsed;
use lines::Lines;

/// Reads JSON lines from `input` and collects the findings.
///
/// ```
/// use tl_audit::check::{check, CheckOptions};
///
/// let log = r#"{"timestamp":"t","level":"WARN","fields":{"message":"THREAD-LOCAL LEAK: ...","kind":"unreleased","key":"CONN","bytes":24},"target":"tl_audit"}
/// {"timestamp":"t","level":"INFO","fields":{"message":"listening"},"target":"my_service"}
/// "#;
/// let outcome = check(log.as_bytes(), &CheckOptions::default()).unwrap();
/// assert_eq!(outcome.findings.len(), 1);
/// assert_eq!(outcome.findings[0].finding.key(), Some("CONN"));
/// assert_eq!(outcome.exit_status(), 1);
///
/// let err = check(&b"{\"level\":\"WA"[..], &CheckOptions::default()).unwrap_err();
/// assert!(err.to_string().starts_with("line 1: truncated JSON"));
/// ```
///
/// # Errors
/// See [`CheckError`]; the first bad line stops the check.
pub fn check(input: impl BufRead, options: &CheckOptions) -> Result<CheckOutcome, CheckError> {
    let mut outcome = CheckOutcome::default();
    let mut lines = Lines::new(input, options.max_line_bytes);
    while let Some((line, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        match event::parse(line, text)? {
            Parsed::NotAnEvent => continue,
            Parsed::OtherEvent => {}
            Parsed::Finding(finding) => outcome.findings.push(LoggedFinding { line, finding }),
            Parsed::ShutdownTotals(counts) => outcome
                .totals
                .get_or_insert_with(AuditTotals::default)
                .add(counts),
        }
        outcome.events += 1;
    }
    outcome.lines = lines.count();
    if outcome.events == 0 && !options.allow_empty {
        return Err(CheckError::Empty);
    }
    Ok(outcome)
}
