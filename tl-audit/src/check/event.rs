//! Parsing one line of text into what it says about the audit: not an
//! event, another event, a finding, or an auditor's shutdown totals.
//!
//! A line counts as an event if it is a JSON object with a `level` and
//! `fields` (flattened: a `level` and a `message` or `target`). A finding is
//! a `tl_audit` event with a `kind` field or, without a `target` field
//! (`with_target(false)`), an event with a `kind` whose message starts with
//! [`LEAK_PREFIX`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tracing::Level;

use super::error::CheckError;
use super::totals::SummaryCounts;
use crate::emit::{SUMMARY_PREFIX, TARGET};
use crate::finding::LEAK_PREFIX;
use crate::record::{FieldValue, RecordedFinding};

/// What a non-blank line holds.
pub(super) enum Parsed {
    /// A JSON object that is not a tracing event.
    NotAnEvent,
    /// A tracing event that is neither a finding nor a shutdown summary.
    OtherEvent,
    /// A finding event.
    Finding(RecordedFinding),
    /// The `total` event of an auditor's shutdown summary.
    ShutdownTotals(SummaryCounts),
}

/// Parses line number `line`, whose text is `text` (not blank).
pub(super) fn parse(line: usize, text: &str) -> Result<Parsed, CheckError> {
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
        return Ok(Parsed::NotAnEvent);
    }
    audit_event(event).map_err(|field| CheckError::BadSummary { line, field })
}

/// serde_json's message without its ` at line 1 column N` suffix (the
/// line is ours, the column is reported separately).
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
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

/// The finding or the shutdown totals in one event, if it is a `tl_audit`
/// event with a `kind`, or the shutdown summary's `total` event. Without a
/// `target` field (`with_target(false)`), the message's prefix tells.
/// `Err` names a shutdown summary's bad field.
fn audit_event(mut event: Map<String, Value>) -> Result<Parsed, &'static str> {
    let level = level_of(&event).unwrap_or(Level::WARN);
    let target = match event.get("target") {
        Some(Value::String(target)) => Some(target.as_str() == TARGET),
        Some(_) => Some(false),
        None => None,
    };
    if target == Some(false) {
        return Ok(Parsed::OtherEvent);
    }
    let fields = match event.remove("fields") {
        Some(Value::Object(fields)) => fields,
        // `flatten_event(true)`: the fields are the event's own keys.
        _ => event,
    };
    let message = fields.get("message").and_then(Value::as_str).unwrap_or("");
    let ours = |prefix: &str| target.is_some() || message.starts_with(prefix);
    if fields.contains_key("kind") {
        return Ok(ours(LEAK_PREFIX)
            .then(|| finding_of(level, fields))
            .flatten()
            .map_or(Parsed::OtherEvent, Parsed::Finding));
    }
    let is_total = fields.get("summary").and_then(Value::as_str) == Some("total")
        && fields.get("shutdown").and_then(Value::as_bool) == Some(true);
    if !(is_total && ours(SUMMARY_PREFIX)) {
        return Ok(Parsed::OtherEvent);
    }
    SummaryCounts::read(&fields).map(Parsed::ShutdownTotals)
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
