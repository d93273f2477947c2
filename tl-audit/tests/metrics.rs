//! The `metrics` feature's figures after a scripted leak (through
//! metrics-util's debugging recorder), the key label cap, and the
//! `on_finding` callback, a panicking one included.
#![cfg(all(feature = "metrics", not(miri)))]

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{Worker, full_manual};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tl_audit::Finding;
use tl_core::ThreadLocal;

/// The process-wide recorder: findings are counted on the threads that make
/// them, so a thread-local recorder would miss the pool's.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this test binary");
        snapshotter
    })
}

/// One reading of every metric. Reading resets them (the debugging
/// recorder swaps each value with zero), so counters are deltas since the
/// previous reading and a gauge reads 0 unless set since.
struct Reading(Vec<(metrics::Key, DebugValue)>);

impl Reading {
    fn take() -> Self {
        Self(
            snapshotter()
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(k, _, _, v)| (k.key().clone(), v))
                .collect(),
        )
    }

    /// The value of metric `name` with the labels `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|(key, _)| {
                key.name() == name
                    && labels.iter().all(|(l, v)| {
                        key.labels()
                            .any(|label| label.key() == *l && label.value() == *v)
                    })
            })
            .map(|(_, v)| v)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.value(name, labels) {
            Some(DebugValue::Gauge(g)) => g.into_inner(),
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(name, labels) {
            Some(DebugValue::Counter(c)) => *c,
            None => 0,
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    }
}

#[test]
fn a_scripted_leak_shows_in_every_metric() {
    static LEAKED: ThreadLocal<String> = ThreadLocal::new().named("metrics::LEAKED");
    let _serial = tl_audit::testing::serial();
    Reading::take();
    let auditor = full_manual()
        .grace_period(Duration::ZERO)
        .install()
        .unwrap();
    let worker = Worker::new("metrics-worker");
    worker.run(|| {
        tl_audit::task("leaky", || {
            LEAKED.set("left behind".to_owned());
        })
    });
    let dropped = Arc::new(ThreadLocal::<u64>::new().named("metrics::DROPPED"));
    let d = Arc::clone(&dropped);
    worker.run(move || {
        d.set(7);
    });
    drop(dropped);
    let scan = auditor.scan_now().unwrap();
    assert_eq!(
        scan.findings.len(),
        1,
        "the stranded value: {:?}",
        scan.findings
    );

    let m = Reading::take();
    let unreleased = [("kind", "unreleased"), ("key", "metrics::LEAKED")];
    assert_eq!(m.counter("tl_audit_findings_total", &unreleased), 1);
    let stranded = [("kind", "stranded"), ("key", "metrics::DROPPED")];
    assert_eq!(m.counter("tl_audit_findings_total", &stranded), 1);
    let key = [("key", "metrics::LEAKED")];
    assert_eq!(m.gauge("tl_audit_held_values", &key), 1.0);
    assert_eq!(m.gauge("tl_audit_held_bytes", &key), 24.0);
    assert_eq!(m.gauge("tl_audit_stranded_values", &[]), 1.0);
    assert_eq!(m.gauge("tl_audit_stranded_bytes", &[]), 8.0);
    assert!(m.gauge("tl_audit_threads", &[]) >= 1.0);
    match m.value("tl_audit_scan_duration_seconds", &[]) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 1),
        other => panic!("{other:?}"),
    }

    // Cleaned up (the access reclaims the dead key's value): the next scan
    // sets the key's gauges and the stranded ones to zero, and counts nothing.
    worker.run(|| drop(LEAKED.remove()));
    auditor.scan_now().unwrap();
    let m = Reading::take();
    assert_eq!(m.gauge("tl_audit_held_values", &key), 0.0);
    assert_eq!(m.gauge("tl_audit_stranded_values", &[]), 0.0);
    assert_eq!(m.gauge("tl_audit_stranded_bytes", &[]), 0.0);
    assert_eq!(m.counter("tl_audit_findings_total", &unreleased), 0);
    worker.stop();
    drop(auditor);
}

#[test]
fn keys_past_the_cap_are_summed_under_other() {
    static KEYS: [ThreadLocal<u32>; 4] = [
        ThreadLocal::new().named("metrics::CAP_A").per_thread(),
        ThreadLocal::new().named("metrics::CAP_B").per_thread(),
        ThreadLocal::new().named("metrics::CAP_C").per_thread(),
        ThreadLocal::new().named("metrics::CAP_D").per_thread(),
    ];
    let _serial = tl_audit::testing::serial();
    Reading::take();
    let auditor = full_manual().metrics_max_keys(2).install().unwrap();
    let worker = Worker::new("metrics-cap");
    worker.run(|| {
        for key in &KEYS {
            key.set(1);
        }
    });
    auditor.scan_now().unwrap();
    let m = Reading::take();
    let labelled =
        m.0.iter()
            // Set by this scan (a gauge not set since the last reading reads 0).
            .filter(|(k, v)| {
                k.name() == "tl_audit_held_values"
                    && matches!(v, DebugValue::Gauge(g) if g.into_inner() > 0.0)
            })
            .map(|(k, _)| k.labels().next().unwrap().value().to_owned())
            .collect::<Vec<_>>();
    // Two names have a label of their own; the rest (the other two, and any
    // key this process still holds) are summed under "other".
    assert_eq!(labelled.len(), 3, "{labelled:?}");
    assert!(labelled.contains(&"other".to_owned()), "{labelled:?}");
    let own: f64 = labelled
        .iter()
        .filter(|l| *l != "other")
        .map(|l| m.gauge("tl_audit_held_values", &[("key", l)]))
        .sum();
    assert_eq!(own, 2.0);
    assert!(m.gauge("tl_audit_held_values", &[("key", "other")]) >= 2.0);
    worker.stop();
    drop(auditor);
}

#[test]
fn the_callback_sees_every_finding_and_its_panics_are_counted() {
    static CALLED: ThreadLocal<String> = ThreadLocal::new().named("metrics::CALLED");
    let _serial = tl_audit::testing::serial();
    Reading::take();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let auditor = full_manual()
        // One event per window: the callback still sees all three findings.
        .rate_limit(1, Duration::from_secs(60))
        .on_finding(move |f: &Finding| sink.lock().unwrap().push(f.key_name()))
        .install()
        .unwrap();
    let worker = Worker::new("callback");
    for _ in 0..3 {
        worker.run(|| tl_audit::task("leaky", || drop(CALLED.set("x".to_owned()))));
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(seen.lock().unwrap().iter().all(|k| k == "metrics::CALLED"));
    worker.run(|| drop(CALLED.remove()));
    drop(auditor);

    Reading::take();
    let auditor = full_manual()
        .on_finding(|_: &Finding| panic!("a broken incident hook"))
        .install()
        .unwrap();
    // The panic does not reach the pool thread: the job returns normally.
    let returned = worker.run(|| {
        tl_audit::task("leaky", || drop(CALLED.set("y".to_owned())));
        "job finished"
    });
    assert_eq!(returned, "job finished");
    assert_eq!(auditor.callback_panics(), 1);
    assert_eq!(auditor.counts().unreleased, 1, "the finding still counts");
    assert_eq!(
        Reading::take().counter("tl_audit_finding_callback_panics_total", &[]),
        1
    );
    worker.run(|| drop(CALLED.remove()));
    worker.stop();
    drop(auditor);
}
