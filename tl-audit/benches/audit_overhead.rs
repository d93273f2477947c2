//! What auditing costs a pool workload: 10,000 tasks on a 2-thread rayon
//! pool, each a pool job that runs a `tl_audit::task` setting and removing
//! two thread-locals, under an auditor in `off`, `sampled` (the default, one
//! task end in 128) and `full` mode. Target: `sampled` <= 1.05x `off`.
//!
//! - `audit_overhead/<mode>`: each task spawned as its own job
//!   (`rayon::Scope::spawn`), as a pool runs requests;
//! - `audit_overhead_par_iter/<mode>`: the same 10,000 tasks as one
//!   `par_iter().for_each`, where a task costs only ~20 ns and any per-task
//!   cost shows.
//!
//! With `--features metrics`, a recorder is installed first, so the same
//! figures measure the `metrics` feature's cost (target: `sampled` <= 1.05x
//! `off` there too).
//!
//! On a busy machine criterion's separate runs drift; after them, `cargo
//! bench` also prints paired ratios (modes alternated, best of 5 runs each,
//! median over 100 rounds), which cancel the drift.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use rayon::prelude::*;
use tl_audit::{Auditor, Mode};
use tl_core::ThreadLocal;

const TASKS: u64 = 10_000;
const MODES: [Mode; 3] = [Mode::Off, Mode::Sampled, Mode::Full];

static USER: ThreadLocal<u64> = ThreadLocal::new().named("USER");
static REQUEST: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST");

#[inline]
fn one_task(i: u64) {
    tl_audit::task("bench_job", || {
        USER.set(black_box(i));
        REQUEST.set(black_box(i + 1));
        black_box(USER.remove());
        black_box(REQUEST.remove());
    });
}

fn spawned(pool: &rayon::ThreadPool) {
    pool.scope(|s| {
        for i in 0..TASKS {
            s.spawn(move |_| one_task(i));
        }
    });
}

fn par_iter(pool: &rayon::ThreadPool) {
    pool.install(|| (0..TASKS).into_par_iter().for_each(one_task));
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .thread_name(|i| format!("bench-pool-{i}"))
        .build()
        .expect("pool")
}

/// The auditor as deployed: with its thread scanning every second.
fn install(mode: Mode) -> Auditor {
    Auditor::builder()
        .mode(mode)
        .ignore_env()
        .install()
        .expect("install auditor")
}

fn group(c: &mut Criterion, name: &str, workload: fn(&rayon::ThreadPool)) {
    let pool = pool();
    let mut group = c.benchmark_group(name);
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(5));
    for mode in MODES {
        let auditor = install(mode);
        group.bench_function(mode.as_str(), |b| b.iter(|| workload(&pool)));
        let report = auditor.finish().expect("finish");
        assert!(report.is_clean(), "{report}");
    }
    group.finish();
}

fn audit_overhead(c: &mut Criterion) {
    group(c, "audit_overhead", spawned);
    group(c, "audit_overhead_par_iter", par_iter);
}

/// Median over `rounds` of (best of 5 runs in a mode) / (best of 5 runs off),
/// for `sampled` and `full`, the modes alternating within each round.
fn paired_ratios(workload: fn(&rayon::ThreadPool), rounds: usize) -> [f64; 2] {
    let pool = pool();
    let mut ratios = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        let mut best = [f64::MAX; 3];
        for (m, mode) in MODES.into_iter().enumerate() {
            let auditor = install(mode);
            for _ in 0..5 {
                let start = Instant::now();
                workload(&pool);
                best[m] = best[m].min(start.elapsed().as_secs_f64());
            }
            drop(auditor);
        }
        ratios[0].push(best[1] / best[0]);
        ratios[1].push(best[2] / best[0]);
    }
    ratios.map(|mut r| {
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    })
}

criterion_group!(benches, audit_overhead);

fn main() {
    // With the `metrics` feature, the auditor's figures go to a real
    // recorder, as in a service that exports them.
    #[cfg(feature = "metrics")]
    metrics_util::debugging::DebuggingRecorder::new()
        .install()
        .expect("the bench's only recorder");
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench`, not when `cargo test --benches` smoke-runs it.
    if std::env::args().any(|a| a == "--bench") {
        for (name, workload) in [
            ("audit_overhead", spawned as fn(&rayon::ThreadPool)),
            ("audit_overhead_par_iter", par_iter),
        ] {
            let [sampled, full] = paired_ratios(workload, 100);
            println!("{name}: paired median ratio sampled/off {sampled:.3}, full/off {full:.3}");
        }
    }
}
