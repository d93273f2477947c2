//! Growth: a thread holding more values or bytes than a threshold.

mod common;

use common::{Worker, capture};
use tl_audit::FindingKind;
use tl_core::ThreadLocal;

static KEYS: [ThreadLocal<u64>; 5] = [
    ThreadLocal::new(),
    ThreadLocal::new(),
    ThreadLocal::new(),
    ThreadLocal::new(),
    ThreadLocal::new(),
];
static BLOB: ThreadLocal<Vec<u8>> = ThreadLocal::new().named("BLOB").heap_size(Vec::capacity);

#[test]
fn entry_count_over_threshold_is_reported_once_per_crossing() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = common::full_manual()
            .max_entries_per_thread(4)
            .install()
            .unwrap();
        let worker = Worker::new("hoarder");
        worker.run(|| {
            KEYS.iter().for_each(|k| {
                k.set(1);
            })
        });

        let scan = auditor.scan_now().unwrap();
        let growth: Vec<_> = scan
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Growth)
            .collect();
        assert_eq!(growth.len(), 1, "{:?}", scan.findings);
        assert_eq!(growth[0].thread.display_name(), "hoarder");
        assert_eq!(growth[0].entries, Some(5));
        assert_eq!(growth[0].max_entries, Some(4));
        assert!(
            growth[0]
                .to_string()
                .contains("holds 5 thread-local values")
        );
        // Once per crossing.
        assert!(auditor.scan_now().unwrap().findings.is_empty());
        // Back under the threshold, then over again: reported again.
        worker.run(|| {
            KEYS[0].remove();
        });
        assert!(auditor.scan_now().unwrap().findings.is_empty());
        worker.run(|| {
            KEYS[0].set(2);
        });
        assert_eq!(auditor.scan_now().unwrap().findings.len(), 1);

        let recorded = layer.findings();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].kind(), Some(FindingKind::Growth));
        assert_eq!(recorded[0].u64_field("entries"), Some(5));
        assert_eq!(recorded[0].u64_field("max_entries"), Some(4));
        assert_eq!(recorded[0].thread_name(), Some("hoarder"));

        worker.run(|| {
            KEYS.iter().for_each(|k| {
                k.remove();
            })
        });
        worker.stop();
        drop(auditor);
    });
}

#[test]
fn retained_bytes_over_threshold_names_the_largest_value() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = common::full_manual()
            .max_bytes_per_thread(10_000)
            .install()
            .unwrap();
        let worker = Worker::new("big-buffers");
        worker.run(|| {
            KEYS[0].set(1);
            BLOB.set(vec![0; 20_000]);
        });
        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 1);
        let f = &scan.findings[0];
        assert_eq!(f.kind, FindingKind::Growth);
        assert!(f.bytes >= 20_000);
        assert_eq!(f.key_name(), "BLOB");
        assert!(f.key_bytes.unwrap() >= 20_000);
        assert_eq!(layer.findings()[0].key(), Some("BLOB"));
        worker.run(|| {
            KEYS[0].remove();
            BLOB.remove();
        });
        worker.stop();
        drop(auditor);
    });
}
