//! The JSON output of tracing-subscriber's formatter, as CI sees it: every
//! documented field is there, and `check` reads back exactly what the
//! `FindingsLayer` collected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Worker, capture};
use serde_json::Value;
#[cfg(feature = "cli")]
use tl_audit::check::{CheckOptions, check};
use tl_core::ThreadLocal;

static CONN: ThreadLocal<String> = ThreadLocal::new().named("CONN");
static KEYS: [ThreadLocal<u8>; 3] = [ThreadLocal::new(), ThreadLocal::new(), ThreadLocal::new()];

const COMMON: &[&str] = &[
    "message",
    "kind",
    "thread.name",
    "thread.id",
    "key",
    "key.id",
    "value_type",
    "policy",
    "bytes",
    "age_ms",
    "declared_at",
    "set_site",
    "mode",
];

/// Runs one finding of each kind under a JSON subscriber; returns the output
/// and what the layer collected.
fn generate() -> (String, Vec<tl_audit::RecordedFinding>) {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "my_service", "listening on 8080");
        let auditor = common::full_manual()
            .grace_period(Duration::ZERO)
            .max_entries_per_thread(3)
            .install()
            .unwrap();
        let worker = Worker::new("json-worker");
        worker.run(|| tl_audit::task("handle_request", || drop(CONN.set("db".to_owned()))));
        let key = Arc::new(ThreadLocal::<u8>::new().named("DROPPED"));
        let k = Arc::clone(&key);
        worker.run(move || {
            k.set(1);
            KEYS.iter().for_each(|k| {
                k.set(1);
            });
        });
        drop(key);
        auditor.scan_now().unwrap();
        worker.run(|| {
            CONN.remove();
            KEYS.iter().for_each(|k| {
                k.remove();
            });
        });
        worker.stop();
        auditor.finish().unwrap();
    });
    (json.contents(), layer.findings())
}

#[test]
fn every_documented_field_is_in_the_json_output() {
    let (json, _) = generate();
    let events: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let findings: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "tl_audit" && e["fields"]["kind"].is_string())
        .collect();
    assert_eq!(findings.len(), 3, "{json}");
    for e in &findings {
        assert_eq!(e["level"], "WARN");
        let fields = e["fields"].as_object().unwrap();
        let kind = fields["kind"].as_str().unwrap();
        let mut expected = COMMON.to_vec();
        expected.extend_from_slice(match kind {
            "unreleased" => &["task", "task_site"][..],
            "stranded" => &["dead_ms"][..],
            "growth" => &["entries", "key_bytes", "max_entries"][..],
            other => panic!("unexpected kind {other}"),
        });
        for name in expected {
            assert!(
                fields.contains_key(name),
                "{kind} event lacks `{name}`: {e}"
            );
        }
        assert!(
            fields["message"]
                .as_str()
                .unwrap()
                .starts_with("THREAD-LOCAL LEAK: ")
        );
        assert!(fields["thread.id"].is_u64() && fields["bytes"].is_u64());
        assert_eq!(fields["thread.name"], "json-worker");
    }
    let summaries = events
        .iter()
        .filter(|e| e["target"] == "tl_audit" && e["fields"]["summary"].is_string())
        .count();
    assert!(summaries >= 1, "a summary at shutdown");
}

#[cfg(feature = "cli")]
#[test]
fn check_reads_back_what_the_layer_collected() {
    let (json, collected) = generate();
    let outcome = check(json.as_bytes(), &CheckOptions::default()).unwrap();
    assert_eq!(outcome.exit_status(), 1);
    let read: Vec<_> = outcome.findings.into_iter().map(|f| f.finding).collect();
    assert_eq!(read.len(), 3);
    assert_eq!(read, collected, "the JSON round trip loses nothing");
}
