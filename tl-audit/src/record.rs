//! [`RecordedFinding`]: a finding as seen from the outside, through its
//! event fields, whether captured by [`FindingsLayer`](crate::FindingsLayer)
//! or read back from JSON logs by `tl_audit::check` (with the `cli` feature).

use core::fmt;
use std::collections::BTreeMap;

use tracing::Level;

use crate::finding::FindingKind;

/// One field value of an event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// Text (also `Display`/`Debug`-recorded values).
    Str(String),
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::U64(n) => write!(f, "{n}"),
            Self::I64(n) => write!(f, "{n}"),
            Self::F64(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A finding event: its level, message and fields (see the field table in
/// the crate docs). Any `tl_audit` event with a `kind` field is one.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedFinding {
    /// WARN, or ERROR in deny mode.
    pub level: Level,
    /// The `kind` field as written (see [`kind`](Self::kind)).
    pub kind_name: String,
    /// The message (it starts with [`LEAK_PREFIX`](crate::LEAK_PREFIX)).
    pub message: String,
    /// Every other field, by name.
    pub fields: BTreeMap<String, FieldValue>,
}

impl RecordedFinding {
    /// The kind, if it is one this version knows.
    pub fn kind(&self) -> Option<FindingKind> {
        self.kind_name.parse().ok()
    }

    /// A field, if present.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }

    /// A text field.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        match self.fields.get(name)? {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An unsigned integer field (also accepts non-negative signed ones).
    pub fn u64_field(&self, name: &str) -> Option<u64> {
        match *self.fields.get(name)? {
            FieldValue::U64(n) => Some(n),
            FieldValue::I64(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// `thread.name`.
    pub fn thread_name(&self) -> Option<&str> {
        self.str_field("thread.name")
    }

    /// `thread.id`.
    pub fn thread_id(&self) -> Option<u64> {
        self.u64_field("thread.id")
    }

    /// `key`.
    pub fn key(&self) -> Option<&str> {
        self.str_field("key")
    }

    /// `value_type`.
    pub fn value_type(&self) -> Option<&str> {
        self.str_field("value_type")
    }

    /// `bytes`.
    pub fn bytes(&self) -> Option<u64> {
        self.u64_field("bytes")
    }

    /// `age_ms`.
    pub fn age_ms(&self) -> Option<u64> {
        self.u64_field("age_ms")
    }

    /// `declared_at`.
    pub fn declared_at(&self) -> Option<&str> {
        self.str_field("declared_at")
    }

    /// `set_site`.
    pub fn set_site(&self) -> Option<&str> {
        self.str_field("set_site")
    }

    /// `task`.
    pub fn task(&self) -> Option<&str> {
        self.str_field("task")
    }
}

impl fmt::Display for RecordedFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
