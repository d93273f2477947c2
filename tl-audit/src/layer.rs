//! [`FindingsLayer`]: a `tracing-subscriber` layer that collects finding
//! events, so that any application or test can assert on them.

use core::fmt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::emit::TARGET;
use crate::finding::FindingKind;
use crate::record::{FieldValue, RecordedFinding};

/// Collects every `tl_audit` finding event that reaches its subscriber.
/// Clones share one collection.
///
/// ```
/// use tl_audit::FindingsLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let findings = FindingsLayer::new();
/// let subscriber = tracing_subscriber::registry().with(findings.clone());
/// tracing::subscriber::with_default(subscriber, || {
///     // ... install an auditor, run the code under test ...
/// });
/// findings.assert_none();
/// ```
#[derive(Clone, Default)]
pub struct FindingsLayer {
    found: Arc<Mutex<Vec<RecordedFinding>>>,
}

impl FindingsLayer {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of what was collected, oldest first.
    pub fn findings(&self) -> Vec<RecordedFinding> {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes what was collected, leaving the collection empty.
    pub fn take(&self) -> Vec<RecordedFinding> {
        core::mem::take(&mut *self.found.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many findings were collected.
    pub fn len(&self) -> usize {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of one kind were collected.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|f| f.kind() == Some(kind))
            .count()
    }

    /// Panics listing every collected finding, if there is any.
    #[track_caller]
    pub fn assert_none(&self) {
        let found = self.findings();
        if !found.is_empty() {
            let list: Vec<String> = found.iter().map(|f| format!("  - {f}")).collect();
            panic!(
                "tl-audit: {} thread-local leak(s) reported:\n{}",
                found.len(),
                list.join("\n")
            );
        }
    }
}

impl fmt::Debug for FindingsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindingsLayer")
            .field("findings", &self.len())
            .finish()
    }
}

impl<S: Subscriber> Layer<S> for FindingsLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let Some(FieldValue::Str(kind_name)) = visitor.fields.remove("kind") else {
            return;
        };
        let message = match visitor.fields.remove("message") {
            Some(FieldValue::Str(m)) => m,
            _ => String::new(),
        };
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(RecordedFinding {
                level: *event.metadata().level(),
                kind_name,
                message,
                fields: visitor.fields,
            });
    }
}

#[derive(Default)]
struct Fields {
    fields: BTreeMap<String, FieldValue>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), FieldValue::Str(value.to_owned()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_owned(), FieldValue::U64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .insert(field.name().to_owned(), FieldValue::I64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .insert(field.name().to_owned(), FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .insert(field.name().to_owned(), FieldValue::Bool(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.fields.insert(
            field.name().to_owned(),
            FieldValue::Str(format!("{value:?}")),
        );
    }
}
