//! Stranded values: a key dies while an idle pooled thread holds its value.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Worker, capture};
use tl_audit::{Auditor, FieldValue, FindingKind, LEAK_PREFIX, Mode};
use tl_core::ThreadLocal;
use tracing::Level;

/// Any bind (or unbind, scope or task start) makes a thread reclaim dead
/// keys' values.
static TOUCH: ThreadLocal<u8> = ThreadLocal::new();

fn auditor(grace: Duration) -> Auditor {
    common::full_manual()
        .grace_period(grace)
        .install()
        .expect("install auditor")
}

/// A key held by the test; `worker` binds a value for it, then idles.
fn strand_on(worker: &Worker, name: &'static str) -> Arc<ThreadLocal<Vec<u8>>> {
    strand_at(worker, name).0
}

/// Like `strand_on`, also returning the line of the `set`.
fn strand_at(worker: &Worker, name: &'static str) -> (Arc<ThreadLocal<Vec<u8>>>, u32) {
    let key = Arc::new(
        ThreadLocal::<Vec<u8>>::new()
            .named(name)
            .heap_size(Vec::capacity),
    );
    let k = Arc::clone(&key);
    #[rustfmt::skip]
    let line = worker.run(move || { k.set(vec![7; 1000]); line!() });
    (key, line)
}

#[test]
fn idle_pooled_thread_holding_a_dead_keys_value_is_reported_once() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = auditor(Duration::ZERO);
        let worker = Worker::new("pool-worker-1");
        let (key, line) = strand_at(&worker, "SESSION_CACHE");
        drop(key);

        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 1, "{:?}", scan.findings);
        assert_eq!(scan.stats.stale, 1);
        let f = &scan.findings[0];
        assert_eq!(f.kind, FindingKind::Stranded);
        assert_eq!(f.thread.display_name(), "pool-worker-1");
        assert_eq!(f.key_name(), "SESSION_CACHE");
        assert!(f.bytes >= 1000, "{}", f.bytes);
        let set_site = f.set_site.expect("set site recorded");
        assert!(set_site.file().ends_with("stranded.rs"));
        assert_eq!(set_site.line(), line);

        // Reported once, not every scan.
        assert!(auditor.scan_now().unwrap().findings.is_empty());
        assert!(auditor.scan_now().unwrap().findings.is_empty());

        let recorded = layer.findings();
        assert_eq!(recorded.len(), 1);
        let r = &recorded[0];
        assert_eq!(r.level, Level::WARN);
        assert_eq!(r.kind(), Some(FindingKind::Stranded));
        assert!(r.message.starts_with(LEAK_PREFIX), "{}", r.message);
        assert!(r.message.contains("pool-worker-1") && r.message.contains("SESSION_CACHE"));
        assert_eq!(r.thread_name(), Some("pool-worker-1"));
        assert_eq!(r.thread_id(), Some(f.thread.id));
        assert_eq!(r.key(), Some("SESSION_CACHE"));
        assert_eq!(r.value_type(), Some("alloc::vec::Vec<u8>"));
        assert_eq!(r.bytes(), Some(f.bytes as u64));
        assert!(r.age_ms().is_some());
        assert!(r.u64_field("dead_ms").is_some());
        assert!(r.declared_at().unwrap().contains("stranded.rs"));
        assert_eq!(r.set_site(), Some(set_site.to_string().as_str()));
        assert_eq!(
            r.field("policy"),
            Some(&FieldValue::Str("task-scoped".into()))
        );
        assert_eq!(r.field("mode"), Some(&FieldValue::Str("full".into())));

        let summary = auditor.summary().unwrap();
        assert_eq!(summary.findings.stranded, 1);
        assert_eq!(summary.stale(), 1);
        let k = summary
            .keys
            .iter()
            .find(|k| k.key.name == Some("SESSION_CACHE"))
            .unwrap();
        assert_eq!((k.holders, k.stale_holders, k.findings.stranded), (1, 1, 1));

        // The thread wakes up and binds any thread-local: the value goes.
        worker.run(|| TOUCH.set(1));
        assert_eq!(auditor.scan_now().unwrap().stats.stale, 0);
        worker.stop();

        let report = auditor.finish().unwrap();
        assert_eq!(report.counts().stranded, 1);
        assert_eq!(
            report.exit_status(),
            0,
            "full mode does not fail the process"
        );
    });
}

#[test]
fn grace_period_is_measured_against_snapshot_time() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = auditor(Duration::from_secs(3600));
        let worker = Worker::new("pool-worker-2");
        drop(strand_on(&worker, "LONG_GRACE"));
        let scan = auditor.scan_now().unwrap();
        assert!(scan.findings.is_empty());
        assert_eq!(scan.stats.stale, 1, "seen, but within the grace period");
        worker.run(|| TOUCH.set(1));
        worker.stop();
        assert!(auditor.finish().unwrap().is_clean());
        assert!(layer.is_empty());
    });
}

#[test]
fn the_task_that_left_a_stranded_value_is_named() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, _layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = auditor(Duration::ZERO);
        let worker = Worker::new("pool-worker-3");
        let key = Arc::new(ThreadLocal::<u64>::new().named("LAST_ORDER"));
        let k = Arc::clone(&key);
        worker.run(move || tl_audit::task("load_order", || k.set(42)));
        drop(key);
        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 1);
        assert_eq!(scan.findings[0].task, Some("load_order"));
        assert!(
            scan.findings[0]
                .to_string()
                .contains("left by task load_order")
        );
        worker.stop();
        let report = auditor.finish().unwrap();
        assert_eq!(
            (report.counts().unreleased, report.counts().stranded),
            (1, 1)
        );
    });
}

#[test]
fn keys_that_died_before_installation() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, _layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let worker = Worker::new("pool-worker-4");
        drop(strand_on(&worker, "EARLY"));

        // Not reported when asked not to.
        let quiet = common::full_manual()
            .grace_period(Duration::ZERO)
            .report_earlier_deaths(false)
            .install()
            .unwrap();
        assert!(quiet.scan_now().unwrap().findings.is_empty());
        drop(quiet);

        // Reported by default, aged from the first scan that saw it.
        let auditor = auditor(Duration::ZERO);
        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 1);
        assert_eq!(scan.findings[0].key_name(), "EARLY");
        assert_eq!(scan.findings[0].dead_for, Some(Duration::ZERO));
        worker.stop();
        drop(auditor);
    });
}

#[test]
#[cfg_attr(miri, ignore = "real time: waits for the auditor thread")]
fn the_auditor_thread_reports_after_the_grace_period() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    let grace = Duration::from_millis(50);
    let auditor = tracing::dispatcher::with_default(&dispatch, || {
        Auditor::builder()
            .mode(Mode::Full)
            .ignore_env()
            .interval(Duration::from_millis(5))
            .grace_period(grace)
            .install()
            .unwrap()
    });
    // Events reach the subscriber current at installation, from the auditor thread.
    let worker = Worker::new("pool-worker-5");
    drop(strand_on(&worker, "BACKGROUND"));
    let died = Instant::now();
    while layer.is_empty() && died.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = died.elapsed();
    let found = layer.findings();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key(), Some("BACKGROUND"));
    assert!(
        seen >= grace,
        "reported after {seen:?}, before the grace period"
    );
    assert!(found[0].u64_field("dead_ms").unwrap() >= 50);
    worker.stop();
    auditor.shutdown().unwrap();
}

/// The rate limit counts each kind apart: a burst of unreleased findings for
/// a key does not silence that key's stranded value afterwards.
#[test]
fn unreleased_burst_does_not_silence_a_stranded_finding() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = common::full_manual()
            .grace_period(Duration::ZERO)
            .rate_limit(2, Duration::from_secs(60))
            .install()
            .expect("install auditor");
        let worker = Worker::new("pool-worker-rate");
        let key = Arc::new(ThreadLocal::<u32>::new().named("RATE_LIMITED"));
        let k = Arc::clone(&key);
        worker.run(move || {
            for i in 0..5 {
                tl_audit::task("leaky_task", || {
                    k.set(i);
                });
            }
        });
        drop(key);
        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 1);
        let kinds: Vec<_> = layer.findings().iter().filter_map(|r| r.kind()).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::Unreleased,
                FindingKind::Unreleased,
                FindingKind::Stranded
            ],
            "two unreleased events (the limit), three withheld, then the stranded one"
        );
        drop(auditor);
        drop(worker);
    });
}
