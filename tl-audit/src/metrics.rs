//! Leak metrics through the [`metrics`](::metrics) facade (feature
//! `metrics`), so that any exporter (Prometheus, OpenTelemetry, StatsD)
//! publishes them. Uses `finding` and `scan`'s figures; knows nothing of
//! the auditor.
//!
//! # Cardinality
//! Keys are labelled by their report name (the name given with `named`, or
//! `ThreadLocal<type>@file:line:col`). The first
//! [`max_keys`](crate::AuditorBuilder::metrics_max_keys) distinct names to
//! appear keep their own label for the auditor's life (the largest keys of
//! the first scan first); later ones are summed under `key="other"`. Service
//! instances whose fields share a name (`OrderService.conn` before and after
//! a reload) share a label.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::finding::Finding;
use crate::scan::KeyTotals;

/// The label of keys past the cap.
pub(crate) const OTHER_KEY: &str = "other";

/// What one scan measured, for [`Metrics::scan`].
#[derive(Debug, Default)]
pub(crate) struct ScanFigures {
    pub(crate) keys: KeyTotals,
    pub(crate) stranded_values: usize,
    pub(crate) stranded_bytes: usize,
    pub(crate) threads: usize,
    pub(crate) took: Duration,
}

/// Label assignment and the gauges set by the last scan.
#[derive(Debug)]
pub(crate) struct Metrics {
    max_keys: usize,
    state: Mutex<LabelState>,
}

#[derive(Debug, Default)]
struct LabelState {
    /// Names with a label of their own (at most `max_keys`).
    labelled: HashSet<String>,
    /// Labels whose per-key gauges the last scan set (to zero them when
    /// their keys are gone).
    gauged: HashSet<String>,
}

impl Metrics {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            state: Mutex::new(LabelState::default()),
        }
    }

    /// `tl_audit_findings_total{kind, key}` += 1.
    pub(crate) fn finding(&self, f: &Finding) {
        let key = match f.key {
            Some(key) => self.lock().label(&key.display_name(), self.max_keys),
            None => "-".to_owned(),
        };
        ::metrics::counter!("tl_audit_findings_total", "kind" => f.kind.as_str(), "key" => key)
            .increment(1);
    }

    /// `tl_audit_finding_callback_panics_total` += 1.
    pub(crate) fn callback_panicked(&self) {
        ::metrics::counter!("tl_audit_finding_callback_panics_total").increment(1);
    }

    /// Sets the scan's gauges and records its duration.
    pub(crate) fn scan(&self, figures: &ScanFigures) {
        // Largest first, so that the first scan labels the keys that matter.
        let mut keys: Vec<_> = figures.keys.values().collect();
        keys.sort_by_key(|k| core::cmp::Reverse(k.2));
        let mut by_label: HashMap<String, (usize, usize)> = HashMap::new();
        let mut state = self.lock();
        for (key, values, bytes) in keys {
            let label = state.label(&key.display_name(), self.max_keys);
            let sum = by_label.entry(label).or_default();
            sum.0 += values;
            sum.1 += bytes;
        }
        for gone in state.gauged.iter().filter(|l| !by_label.contains_key(*l)) {
            set_key_gauges(gone.clone(), 0, 0);
        }
        state.gauged = by_label.keys().cloned().collect();
        drop(state);
        for (label, (values, bytes)) in by_label {
            set_key_gauges(label, values, bytes);
        }
        ::metrics::gauge!("tl_audit_stranded_values").set(figures.stranded_values as f64);
        ::metrics::gauge!("tl_audit_stranded_bytes").set(figures.stranded_bytes as f64);
        ::metrics::gauge!("tl_audit_threads").set(figures.threads as f64);
        ::metrics::histogram!("tl_audit_scan_duration_seconds").record(figures.took.as_secs_f64());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LabelState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LabelState {
    /// `name`'s label: its own if it has one or there is room, else `other`.
    fn label(&mut self, name: &str, max_keys: usize) -> String {
        if self.labelled.contains(name) {
            return name.to_owned();
        }
        if self.labelled.len() < max_keys {
            self.labelled.insert(name.to_owned());
            return name.to_owned();
        }
        OTHER_KEY.to_owned()
    }
}

fn set_key_gauges(label: String, values: usize, bytes: usize) {
    ::metrics::gauge!("tl_audit_held_values", "key" => label.clone()).set(values as f64);
    ::metrics::gauge!("tl_audit_held_bytes", "key" => label).set(bytes as f64);
}
