//! One full scan of 1,000 idle (parked) threads, each holding 100 bound
//! values of 100 distinct keys: 100,000 entries. Target: <= 10 ms.
//!
//! Benchmark ids: `scan/1000x100`; `scan/1000x100_idle_held`: the same scan
//! when every one of the 100,000 values is held past
//! [`idle_after`](tl_audit::AuditorBuilder::idle_after) by a thread running
//! no task (all reported by the first scan, each looked up again by every
//! later one: the idle check's worst case); and for reference
//! `scan/1000x100_snapshot_all`: `tl_core::registry::snapshot_all()` alone,
//! which holds all 100,000 entry copies at once; the auditor's scan digests
//! one thread's snapshot at a time instead and is several times faster.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tl_audit::{Auditor, Mode};
use tl_core::ThreadLocal;

const THREADS: usize = 1_000;
const KEYS: usize = 100;

fn scan(c: &mut Criterion) {
    let keys: &'static [ThreadLocal<u64>] =
        Vec::leak((0..KEYS).map(|_| ThreadLocal::new()).collect());
    // Every thread binds its values, waits at `ready`, then parks until
    // `done`: idle threads, as in a pool between requests.
    let ready = Arc::new(Barrier::new(THREADS + 1));
    let done = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (ready, done) = (Arc::clone(&ready), Arc::clone(&done));
            std::thread::Builder::new()
                .name(format!("idle-{t}"))
                .stack_size(64 * 1024)
                .spawn(move || {
                    for (i, key) in keys.iter().enumerate() {
                        key.set(i as u64);
                    }
                    ready.wait();
                    done.wait();
                })
                .expect("spawn idle thread")
        })
        .collect();
    ready.wait();

    let auditor = Auditor::builder()
        .mode(Mode::Full)
        .ignore_env()
        .manual()
        .install()
        .expect("install auditor");
    let first = auditor.scan_now().expect("scan");
    assert_eq!(first.stats.threads, THREADS, "every idle thread is scanned");
    assert_eq!(first.stats.bound, THREADS * KEYS);

    let mut group = c.benchmark_group("scan");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("1000x100", |b| {
        b.iter(|| {
            let report = auditor.scan_now().expect("scan");
            assert_eq!(report.stats.bound, THREADS * KEYS);
            report
        });
    });
    group.bench_function("1000x100_snapshot_all", |b| {
        b.iter(tl_core::registry::snapshot_all)
    });
    // Its final gate reports the 100,000 values the threads still hold.
    drop(auditor);

    let auditor = Auditor::builder()
        .mode(Mode::Full)
        .ignore_env()
        .manual()
        .idle_after(Duration::ZERO)
        .install()
        .expect("install auditor");
    let first = auditor.scan_now().expect("scan");
    assert_eq!(
        first.findings.len(),
        THREADS * KEYS,
        "every value is idle-held"
    );
    group.bench_function("1000x100_idle_held", |b| {
        b.iter(|| {
            let report = auditor.scan_now().expect("scan");
            assert!(report.findings.is_empty(), "each bind is reported once");
            report
        });
    });
    group.finish();

    drop(auditor);
    done.wait();
    for h in handles {
        h.join().expect("idle thread");
    }
}

criterion_group!(benches, scan);
criterion_main!(benches);
