//! Reading findings back from JSON logs: the core of `tl-audit check FILE`,
//! for CI jobs that run services rather than `cargo test`.
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
//! event whose message starts with [`LEAK_PREFIX`] and
//! that has a `kind`. Other events are skipped, except the `total` event of
//! the auditor's shutdown summary, whose counts are read into
//! [`CheckOutcome::totals`]: the rate limiter withholds some finding events
//! from the log, and only the summary counts them. Blank lines are skipped.
//! Anything else that is not a JSON object is an error naming its line: a
//! log that cannot be read must not pass CI.

use core::fmt;
use std::collections::BTreeMap;
use std::io::{self, BufRead};

use serde_json::{Map, Value};
use tracing::Level;

use crate::emit::{SUMMARY_PREFIX, TARGET};
use crate::finding::LEAK_PREFIX;
use crate::record::{FieldValue, RecordedFinding};
use crate::summary::Counts;

/// Longest line read by default: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How to read the input.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Accept an input with no event at all (default false: an empty log is
    /// more likely a misconfigured job than a clean run).
    pub allow_empty: bool,
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            allow_empty: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl CheckOptions {
    /// Sets [`allow_empty`](Self::allow_empty).
    #[must_use]
    pub fn allow_empty(mut self, yes: bool) -> Self {
        self.allow_empty = yes;
        self
    }

    /// Sets [`max_line_bytes`](Self::max_line_bytes).
    #[must_use]
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }
}

/// A finding and the line it was read from (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedFinding {
    /// The line number.
    pub line: usize,
    /// The finding.
    pub finding: RecordedFinding,
}

/// What a readable input held.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// Every finding event, in input order. The rate limiter may have
    /// withheld others from the log: see [`totals`](Self::totals).
    pub findings: Vec<LoggedFinding>,
    /// Lines read (blank ones included).
    pub lines: usize,
    /// Events read, of any target (JSON objects that look like
    /// `tracing-subscriber` events; other objects are not counted).
    pub events: usize,
    /// The auditors' final counts, from their shutdown summaries; `None` if
    /// the log holds none (cut short, filtered, or an auditor that never
    /// shut down).
    pub totals: Option<AuditTotals>,
}

impl CheckOutcome {
    /// 1 if anything was found (a finding event, or findings counted by a
    /// shutdown summary), else 0: the CLI's exit status.
    pub fn exit_status(&self) -> u8 {
        let counted = self.totals.is_some_and(|t| t.findings.total() > 0);
        u8::from(!self.findings.is_empty() || counted)
    }
}

/// The counts of the auditors' shutdown summaries in a log (summed, if
/// several auditors ran one after the other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditTotals {
    /// Shutdown summaries read: one per auditor that shut down.
    pub summaries: usize,
    /// Findings counted, by kind, whether or not their event was logged.
    pub findings: Counts,
    /// Finding events withheld from the log by the rate limiter.
    pub suppressed: u64,
}

impl fmt::Display for AuditTotals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.summaries == 1 {
            f.write_str("the auditor's shutdown summary")?;
        } else {
            write!(f, "{} auditors' shutdown summaries", self.summaries)?;
        }
        write!(
            f,
            ": {} finding(s) in total ({}), {} event(s) withheld by the rate limiter",
            self.findings.total(),
            self.findings,
            self.suppressed
        )
    }
}

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
pub fn check(mut input: impl BufRead, options: &CheckOptions) -> Result<CheckOutcome, CheckError> {
    let mut outcome = CheckOutcome::default();
    let mut buf = Vec::new();
    loop {
        let line = outcome.lines + 1;
        buf.clear();
        match read_line(&mut input, &mut buf, options.max_line_bytes) {
            Ok(Line::Eof) => break,
            Ok(Line::TooLong) => {
                return Err(CheckError::LineTooLong {
                    line,
                    limit: options.max_line_bytes,
                });
            }
            Ok(Line::Read) => {}
            Err(source) => return Err(CheckError::Read { line, source }),
        }
        outcome.lines = line;
        let mut bytes = buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = core::str::from_utf8(bytes).map_err(|e| CheckError::NotUtf8 {
            line,
            offset: e.valid_up_to(),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|e| CheckError::NotJson {
            line,
            column: e.column(),
            truncated: e.is_eof(),
            reason: without_position(&e.to_string()),
        })?;
        let Value::Object(event) = value else {
            return Err(CheckError::NotObject {
                line,
                found: kind_of(&value),
            });
        };
        if !is_event(&event) {
            continue;
        }
        outcome.events += 1;
        match audit_event(event) {
            Some(AuditEvent::Finding(finding)) => {
                outcome.findings.push(LoggedFinding { line, finding });
            }
            Some(AuditEvent::ShutdownTotals {
                findings,
                suppressed,
            }) => {
                let totals = outcome.totals.get_or_insert_with(AuditTotals::default);
                totals.summaries += 1;
                let sum = &mut totals.findings;
                sum.stranded = sum.stranded.saturating_add(findings.stranded);
                sum.unreleased = sum.unreleased.saturating_add(findings.unreleased);
                sum.growth = sum.growth.saturating_add(findings.growth);
                totals.suppressed = totals.suppressed.saturating_add(suppressed);
            }
            Some(AuditEvent::BadSummary(field)) => {
                return Err(CheckError::BadSummary { line, field });
            }
            None => {}
        }
    }
    if outcome.events == 0 && !options.allow_empty {
        return Err(CheckError::Empty);
    }
    Ok(outcome)
}

/// serde_json's message without its ` at line 1 column N` suffix (the
/// line is ours, the column is reported separately).
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

enum Line {
    Read,
    TooLong,
    Eof,
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, refusing to
/// buffer more than `limit` bytes.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > limit {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !read_any {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Line::Read)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The event's level, if it has a valid one.
fn level_of(event: &Map<String, Value>) -> Option<Level> {
    event.get("level")?.as_str()?.parse().ok()
}

/// Whether a JSON object looks like an event of `tracing-subscriber`'s JSON
/// formatter: a level, and fields (or, flattened, a message or a target).
fn is_event(event: &Map<String, Value>) -> bool {
    level_of(event).is_some()
        && (event.get("fields").is_some_and(Value::is_object)
            || event.contains_key("message")
            || event.contains_key("target"))
}

/// What an event says about the audit.
enum AuditEvent {
    Finding(RecordedFinding),
    /// The `total` event of an auditor's shutdown summary.
    ShutdownTotals {
        findings: Counts,
        suppressed: u64,
    },
    /// A shutdown summary's `total` event with this field bad.
    BadSummary(&'static str),
}

/// The finding or the shutdown totals in one event, if it is a `tl_audit`
/// event with a `kind`, or the shutdown summary's `total` event. Without a
/// `target` field (`with_target(false)`), the message's prefix tells.
fn audit_event(mut event: Map<String, Value>) -> Option<AuditEvent> {
    let level = level_of(&event).unwrap_or(Level::WARN);
    let target = match event.get("target") {
        Some(Value::String(target)) => Some(target.as_str() == TARGET),
        Some(_) => Some(false),
        None => None,
    };
    if target == Some(false) {
        return None;
    }
    let fields = match event.remove("fields") {
        Some(Value::Object(fields)) => fields,
        // `flatten_event(true)`: the fields are the event's own keys.
        _ => event,
    };
    let message = fields.get("message").and_then(Value::as_str).unwrap_or("");
    let ours = |prefix: &str| target.is_some() || message.starts_with(prefix);
    if fields.contains_key("kind") {
        return ours(LEAK_PREFIX)
            .then(|| finding_of(level, fields))
            .flatten()
            .map(AuditEvent::Finding);
    }
    let is_total = fields.get("summary").and_then(Value::as_str) == Some("total")
        && fields.get("shutdown").and_then(Value::as_bool) == Some(true);
    if !(is_total && ours(SUMMARY_PREFIX)) {
        return None;
    }
    // A verdict rests on these: a count that cannot be read fails the check
    // rather than counting as 0.
    let count = |name: &'static str| fields.get(name).and_then(Value::as_u64).ok_or(name);
    let read = || -> Result<AuditEvent, &'static str> {
        let findings = Counts {
            stranded: count("stranded")?,
            unreleased: count("unreleased")?,
            growth: count("growth")?,
        };
        if count("findings")? != findings.total() {
            return Err("findings");
        }
        Ok(AuditEvent::ShutdownTotals {
            findings,
            suppressed: count("suppressed")?,
        })
    };
    Some(read().unwrap_or_else(AuditEvent::BadSummary))
}

/// The finding in a finding event's fields.
fn finding_of(level: Level, mut fields: Map<String, Value>) -> Option<RecordedFinding> {
    let kind_name = match fields.remove("kind")? {
        Value::String(kind) => kind,
        other => other.to_string(),
    };
    let message = match fields.remove("message") {
        Some(Value::String(m)) => m,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let fields: BTreeMap<String, FieldValue> = fields
        .into_iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "timestamp"
                    | "level"
                    | "target"
                    | "span"
                    | "spans"
                    | "threadName"
                    | "threadId"
                    | "filename"
                    | "line_number"
            )
        })
        .map(|(name, value)| (name, field_value(value)))
        .collect();
    Some(RecordedFinding {
        level,
        kind_name,
        message,
        fields,
    })
}

fn field_value(value: Value) -> FieldValue {
    match value {
        Value::String(s) => FieldValue::Str(s),
        Value::Bool(b) => FieldValue::Bool(b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                FieldValue::U64(u)
            } else if let Some(i) = n.as_i64() {
                FieldValue::I64(i)
            } else {
                FieldValue::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        other => FieldValue::Str(other.to_string()),
    }
}

/// Renders finding events as a plain-text table, then their count by kind
/// (of events logged: see [`CheckOutcome::totals`] for all findings). Control
/// characters in the log are shown as `?`, so a hostile log cannot drive
/// the terminal.
pub fn render_table(findings: &[LoggedFinding]) -> String {
    const HEADERS: [&str; 9] = [
        "LINE", "KIND", "THREAD", "KEY", "TYPE", "BYTES", "AGE", "SET AT", "TASK",
    ];
    let rows: Vec<[String; 9]> = findings
        .iter()
        .map(|LoggedFinding { line, finding: f }| {
            let thread = match (f.thread_name(), f.thread_id()) {
                (Some(name), Some(id)) => format!("{name} (#{id})"),
                (Some(name), None) => name.to_owned(),
                (None, Some(id)) => format!("#{id}"),
                (None, None) => "-".to_owned(),
            };
            let cell = |name: &str| {
                f.field(name)
                    .map_or_else(|| "-".to_owned(), ToString::to_string)
            };
            [
                line.to_string(),
                f.kind_name.clone(),
                thread,
                cell("key"),
                cell("value_type"),
                cell("bytes"),
                f.age_ms()
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms")),
                cell("set_site"),
                cell("task"),
            ]
            .map(|c| sanitize(&c))
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[String]| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&HEADERS.map(str::to_owned));
    for row in &rows {
        push_row(row);
    }
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *by_kind.entry(f.finding.kind_name.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by_kind
        .iter()
        .map(|(k, n)| format!("{n} {}", sanitize(k)))
        .collect();
    out.push_str(&format!(
        "{} thread-local leak finding event(s) logged: {}\n",
        findings.len(),
        counts.join(", ")
    ));
    out
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Result<CheckOutcome, CheckError> {
        check(input, &CheckOptions::default())
    }

    const FINDING: &str = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"ERROR","fields":{"message":"THREAD-LOCAL LEAK: x","kind":"stranded","thread.name":"pool-1","thread.id":3,"key":"CONN","value_type":"alloc::string::String","bytes":24,"age_ms":1500,"set_site":"src/db.rs:10:5"},"target":"tl_audit"}"#;

    #[test]
    fn reads_findings_and_skips_others() {
        let input = format!(
            "{FINDING}\r\n\n{}\n{}",
            r#"{"level":"INFO","fields":{"message":"THREAD-LOCAL AUDIT SUMMARY: ...","summary":"total"},"target":"tl_audit"}"#,
            r#"{"level":"INFO","fields":{"message":"hi"},"target":"app"}"#
        );
        let outcome = run(input.as_bytes()).unwrap();
        assert_eq!(outcome.lines, 4);
        assert_eq!(outcome.events, 3);
        assert_eq!(outcome.findings.len(), 1);
        let f = &outcome.findings[0].finding;
        assert_eq!(f.level, Level::ERROR);
        assert_eq!(f.kind(), Some(crate::FindingKind::Stranded));
        assert_eq!(f.thread_name(), Some("pool-1"));
        assert_eq!(f.thread_id(), Some(3));
        assert_eq!(f.bytes(), Some(24));
        let table = render_table(&outcome.findings);
        assert!(table.contains("pool-1 (#3)"), "{table}");
        assert!(
            table.contains("1 thread-local leak finding event(s) logged: 1 stranded"),
            "{table}"
        );
        // A summary, but not the one at shutdown: no totals.
        assert_eq!(outcome.totals, None);
    }

    #[test]
    fn flattened_events_are_read() {
        let input = r#"{"level":"WARN","message":"THREAD-LOCAL LEAK: y","kind":"growth","thread.name":"w","entries":5,"target":"tl_audit"}"#;
        let outcome = run(input.as_bytes()).unwrap();
        assert_eq!(outcome.findings[0].finding.u64_field("entries"), Some(5));
    }

    #[test]
    fn bad_input_names_the_line() {
        let truncated = format!("{FINDING}\n{}", &FINDING[..60]);
        let err = run(truncated.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::NotJson {
                    line: 2,
                    truncated: true,
                    ..
                }
            ),
            "{err}"
        );

        let err = run(b"{\"a\":1}\nnot json\n").unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::NotJson {
                    line: 2,
                    truncated: false,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "line 2, column 2: not JSON: expected ident"
        );

        let err = run(b"[1,2]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: expected a JSON object (one tracing event), found an array"
        );

        let err = run(b"{}\n\x00\x9f\x92\x96\xff\n").unwrap_err();
        assert!(
            matches!(err, CheckError::NotUtf8 { line: 2, offset: 1 }),
            "{err}"
        );

        let long = format!(
            "{{\"level\":\"INFO\",\"fields\":{{\"message\":\"{}\"}}}}\n",
            "x".repeat(100)
        );
        let err = check(long.as_bytes(), &CheckOptions::default().max_line_bytes(64)).unwrap_err();
        assert!(
            matches!(err, CheckError::LineTooLong { line: 1, limit: 64 }),
            "{err}"
        );
        assert!(
            check(
                long.as_bytes(),
                &CheckOptions::default().max_line_bytes(200)
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_input_is_an_error_unless_allowed() {
        for input in [&b""[..], b"\n\n  \n"] {
            assert!(matches!(run(input), Err(CheckError::Empty)));
            let ok = check(input, &CheckOptions::default().allow_empty(true)).unwrap();
            assert_eq!(ok.exit_status(), 0);
        }
    }

    #[test]
    fn control_characters_are_not_printed() {
        let input = r#"{"level":"WARN","fields":{"message":"m","kind":"unreleased","key":"A\u001b[31mB\nC"},"target":"tl_audit"}"#;
        let outcome = run(input.as_bytes()).unwrap();
        let table = render_table(&outcome.findings);
        assert!(table.contains("A?[31mB?C"), "{table}");
        assert!(!table.contains('\u{1b}'));
    }

    /// `fmt().json().with_target(false)`: no `target` field, so findings are
    /// told by their message's prefix (and their `kind`).
    #[test]
    fn findings_without_a_target_field_are_read() {
        let finding = r#"{"timestamp":"t","level":"WARN","fields":{"message":"THREAD-LOCAL LEAK: task a left CONN","kind":"unreleased","key":"CONN"}}"#;
        let flattened =
            r#"{"level":"WARN","message":"THREAD-LOCAL LEAK: y","kind":"growth","entries":5}"#;
        // An application's own event with a `kind` field is not a finding.
        let other = r#"{"level":"INFO","fields":{"message":"order placed","kind":"retail"}}"#;
        let input = format!("{finding}\n{flattened}\n{other}\n");
        let outcome = run(input.as_bytes()).unwrap();
        assert_eq!(outcome.events, 3);
        let kinds: Vec<_> = outcome
            .findings
            .iter()
            .map(|f| (f.line, f.finding.kind_name.as_str()))
            .collect();
        assert_eq!(kinds, [(1, "unreleased"), (2, "growth")]);
        assert_eq!(outcome.findings[0].finding.key(), Some("CONN"));
        assert_eq!(outcome.exit_status(), 1);
    }

    /// Only objects shaped like tracing events count: a JSON file of other
    /// objects is not a clean log.
    #[test]
    fn json_objects_that_are_not_events_are_not_counted() {
        for input in [
            &br#"{"name":"x"}"#[..],
            br#"{"a":1}
{"level":"INFO"}
{"level":"loud","fields":{"message":"m"}}
{"level":"INFO","fields":"m"}"#,
        ] {
            assert!(
                matches!(run(input), Err(CheckError::Empty)),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let mixed = format!("{{\"name\":\"x\"}}\n{FINDING}\n");
        let outcome = run(mixed.as_bytes()).unwrap();
        assert_eq!((outcome.events, outcome.findings.len()), (1, 1));
    }

    const SHUTDOWN: &str = r#"{"level":"INFO","fields":{"message":"THREAD-LOCAL AUDIT SUMMARY: 7 finding(s)","summary":"total","shutdown":true,"findings":7,"stranded":1,"unreleased":6,"growth":0,"suppressed":5},"target":"tl_audit"}"#;

    #[test]
    fn shutdown_summaries_give_the_totals() {
        // Two auditors ran one after the other; a summary taken mid-run
        // (no `shutdown`) does not count.
        let mid_run = SHUTDOWN.replace(r#""shutdown":true,"#, "");
        let second = r#"{"level":"INFO","message":"THREAD-LOCAL AUDIT SUMMARY: 1 finding(s)","summary":"total","shutdown":true,"findings":1,"stranded":0,"unreleased":0,"growth":1,"suppressed":0}"#;
        let input = format!("{FINDING}\n{mid_run}\n{SHUTDOWN}\n{second}\n");
        let outcome = run(input.as_bytes()).unwrap();
        assert_eq!(outcome.findings.len(), 1);
        let totals = outcome.totals.unwrap();
        assert_eq!(totals.summaries, 2);
        assert_eq!(
            (
                totals.findings.stranded,
                totals.findings.unreleased,
                totals.findings.growth
            ),
            (1, 6, 1)
        );
        assert_eq!(totals.suppressed, 5);
        assert_eq!(
            totals.to_string(),
            "2 auditors' shutdown summaries: 8 finding(s) in total (1 stranded, 6 unreleased, 1 growth), 5 event(s) withheld by the rate limiter"
        );

        // Findings counted but none logged (say, filtered out): not clean.
        let outcome = run(SHUTDOWN.as_bytes()).unwrap();
        assert!(outcome.findings.is_empty());
        assert_eq!(outcome.exit_status(), 1);
        assert!(
            outcome
                .totals
                .unwrap()
                .to_string()
                .starts_with("the auditor's shutdown summary: 7 finding(s) in total")
        );

        // Another target's "summary" is not the auditor's.
        let foreign = SHUTDOWN.replace(r#""target":"tl_audit""#, r#""target":"billing""#);
        assert_eq!(run(foreign.as_bytes()).unwrap().totals, None);
    }

    /// A summary whose counts cannot be read or do not add up fails the
    /// check (exit 2), rather than counting as 0 findings.
    #[test]
    fn bad_shutdown_summaries_are_errors() {
        for (from, to, field) in [
            (r#""stranded":1"#, r#""stranded":"1""#, "stranded"),
            (r#""unreleased":6"#, r#""unreleased":-6"#, "unreleased"),
            (r#""growth":0,"#, "", "growth"),
            (r#""findings":7"#, r#""findings":2"#, "findings"),
            (r#""suppressed":5"#, r#""suppressed":5.5"#, "suppressed"),
        ] {
            let input = format!("{FINDING}\n{}\n", SHUTDOWN.replace(from, to));
            match run(input.as_bytes()) {
                Err(CheckError::BadSummary { line: 2, field: f }) => assert_eq!(f, field),
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
    }

    /// Counts near `u64::MAX` saturate: no overflow panic, no wrap to 0.
    #[test]
    fn huge_summary_counts_saturate() {
        let max = u64::MAX;
        let huge = SHUTDOWN
            .replace(r#""stranded":1"#, &format!(r#""stranded":{max}"#))
            .replace(r#""unreleased":6"#, r#""unreleased":0"#)
            .replace(r#""findings":7"#, &format!(r#""findings":{max}"#));
        let input = format!("{huge}\n{huge}\n");
        let outcome = run(input.as_bytes()).unwrap();
        let totals = outcome.totals.unwrap();
        assert_eq!(totals.findings.stranded, max);
        assert_eq!(totals.findings.total(), max);
        assert_eq!(outcome.exit_status(), 1);
    }

    #[test]
    fn bom_is_skipped() {
        let input = format!("\u{feff}{FINDING}\n");
        assert_eq!(run(input.as_bytes()).unwrap().findings.len(), 1);
    }
}
