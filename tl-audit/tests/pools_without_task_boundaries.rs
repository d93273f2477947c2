//! Values left on pooled threads by code that draws no task boundaries (a
//! plain std pool fed by a channel, a plain rayon pool, plain tokio
//! `spawn_blocking`), kept alive past the audit: an audit scope fails, a
//! running auditor reports the idle-held value, and the shutdown gate exits 1
//! in deny mode. Also what must not be reported: per-thread caches and long
//! tasks.
#![cfg(not(miri))] // real threads, pools and time

mod common;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Worker, capture, wait_for};
use tl_audit::testing::{AuditFailure, AuditScope};
use tl_audit::{Auditor, Mode, RecordedFinding};
use tl_core::ThreadLocal;

static USER: ThreadLocal<String> = ThreadLocal::new().named("USER");

/// A handler that forgets `remove()` on its error path.
fn handle(request: u32) -> Result<(), String> {
    USER.set(format!("user-{request}"));
    if request % 3 == 2 {
        return Err("payment declined".to_owned());
    }
    USER.remove();
    Ok(())
}

/// Something that runs a batch of requests on pooled threads and waits for
/// them, keeping its threads alive afterwards.
trait Pool {
    fn serve(&self, requests: std::ops::Range<u32>);
}

/// A plain std pool: two threads fed by one channel.
struct StdPool {
    jobs: Option<Sender<Box<dyn FnOnce() + Send>>>,
    threads: Vec<JoinHandle<()>>,
}

impl StdPool {
    fn new() -> Self {
        Self::named("std-pool")
    }

    /// Threads named `{prefix}-0` and `{prefix}-1`.
    fn named(prefix: &str) -> Self {
        let (jobs, queue): (Sender<Box<dyn FnOnce() + Send>>, Receiver<_>) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..2)
            .map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("{prefix}-{i}"))
                    .spawn(move || {
                        loop {
                            let job = queue.lock().unwrap().recv();
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        Self {
            jobs: Some(jobs),
            threads,
        }
    }
}

impl Pool for StdPool {
    fn serve(&self, requests: std::ops::Range<u32>) {
        let (done, finished) = mpsc::channel();
        let n = requests.len();
        for request in requests {
            let done = done.clone();
            let job = Box::new(move || {
                let _ = handle(request);
                done.send(()).unwrap();
            });
            self.jobs.as_ref().unwrap().send(job).unwrap();
        }
        for _ in 0..n {
            finished.recv().unwrap();
        }
    }
}

impl Drop for StdPool {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// A plain rayon pool: `install` + `par_iter`.
struct RayonPool(rayon::ThreadPool);

impl RayonPool {
    fn new() -> Self {
        Self(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .thread_name(|i| format!("rayon-pool-{i}"))
                .build()
                .unwrap(),
        )
    }
}

impl Pool for RayonPool {
    fn serve(&self, requests: std::ops::Range<u32>) {
        use rayon::prelude::*;
        self.0.install(|| {
            requests.into_par_iter().for_each(|r| {
                let _ = handle(r);
            });
        });
    }
}

/// Plain tokio `spawn_blocking` (blocking threads stay alive 10 s idle).
struct TokioBlocking(tokio::runtime::Runtime);

impl TokioBlocking {
    fn new() -> Self {
        Self(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .thread_name("tokio-blocking")
                .build()
                .unwrap(),
        )
    }
}

impl Pool for TokioBlocking {
    fn serve(&self, requests: std::ops::Range<u32>) {
        self.0.block_on(async {
            for r in requests {
                let _ = tokio::task::spawn_blocking(move || handle(r)).await;
            }
        });
    }
}

fn pools() -> Vec<(&'static str, Box<dyn Pool>)> {
    vec![
        ("std", Box::new(StdPool::new()) as Box<dyn Pool>),
        ("rayon", Box::new(RayonPool::new())),
        ("tokio spawn_blocking", Box::new(TokioBlocking::new())),
    ]
}

fn found_by(f: &RecordedFinding) -> Option<&str> {
    f.str_field("found_by")
}

#[test]
fn an_audit_scope_fails_naming_the_key_left_on_an_idle_pool() {
    let _serial = tl_audit::testing::serial();
    for (name, pool) in pools() {
        let failure = AuditScope::new().run(|| pool.serve(0..6)).expect_err(name);
        let AuditFailure::Findings(report) = &failure else {
            panic!("{name}: {failure}");
        };
        assert!(!report.findings().is_empty(), "{name}");
        for f in report.findings() {
            assert_eq!(f.key.and_then(|k| k.name), Some("USER"), "{name}");
            assert_eq!(f.found_by, tl_audit::Detection::Gate, "{name}: {f}");
        }
        let text = failure.to_string();
        assert!(
            text.contains(
                "was running no task when it was checked at the end of the audit, yet held USER"
            ),
            "{name}: {text}"
        );
    }
}

#[test]
fn a_running_auditor_reports_the_idle_held_value_within_the_threshold_and_an_interval() {
    let _serial = tl_audit::testing::serial();
    let idle_after = Duration::from_millis(150);
    let interval = Duration::from_millis(20);
    for (name, pool) in pools() {
        let (dispatch, layer, _json) = capture();
        tracing::dispatcher::with_default(&dispatch, || {
            let auditor = Auditor::builder()
                .ignore_env()
                .interval(interval)
                .idle_after(idle_after)
                .install()
                .unwrap();
            pool.serve(0..6);
            let served = Instant::now();
            wait_for(|| layer.findings().iter().any(|f| found_by(f) == Some("idle")));
            let took = served.elapsed();
            let found = layer.findings();
            let idle: Vec<_> = found
                .iter()
                .filter(|f| found_by(f) == Some("idle"))
                .collect();
            assert!(!idle.is_empty(), "{name}: {found:?}");
            // Bound before `served`, so its age at the report is at least the
            // threshold; found within the threshold plus one interval (plus
            // scheduling slack on a busy 2-core machine).
            assert!(
                took < idle_after + interval + Duration::from_secs(2),
                "{name}: {took:?}"
            );
            for f in &idle {
                assert_eq!(f.key(), Some("USER"), "{name}");
                assert!(f.age_ms().unwrap() >= 150, "{name}: {f:?}");
                assert!(
                    f.set_site()
                        .unwrap()
                        .contains("pools_without_task_boundaries.rs")
                );
                assert!(
                    f.message
                        .contains("was running no task when it was scanned, yet held USER")
                        && f.message
                            .contains("bind it with USER.scope(..) instead of set(..)")
                        && f.message.contains(".per_thread()"),
                    "{}",
                    f.message
                );
            }
            // Reported once per bind: however many scans run after every
            // held value is past the threshold, each holding thread has one
            // idle finding. (The pool's two threads may both hold a value,
            // bound at different times, so they may be found by different
            // scans; counting findings between two instants would be racy.)
            std::thread::sleep(
                (served + idle_after + interval * 10).saturating_duration_since(Instant::now()),
            );
            std::thread::sleep(interval * 5);
            let found = layer.findings();
            let mut threads: Vec<u64> = found
                .iter()
                .filter(|f| found_by(f) == Some("idle"))
                .map(|f| f.thread_id().expect("idle findings name their thread"))
                .collect();
            let reported = threads.len();
            threads.sort_unstable();
            threads.dedup();
            assert_eq!(threads.len(), reported, "{name}: reported twice: {found:?}");
            assert!(reported <= 2, "{name}: {found:?}");
            drop(auditor);
        });
    }
}

#[test]
fn finish_in_deny_mode_exits_1_while_an_idle_pool_holds_a_request_value() {
    let _serial = tl_audit::testing::serial();
    for (name, pool) in pools() {
        let auditor = Auditor::builder()
            .mode(Mode::Deny)
            .ignore_env()
            .manual()
            .install()
            .unwrap();
        pool.serve(0..6);
        let report = auditor.finish().unwrap();
        assert_eq!(report.exit_status(), 1, "{name}: {report}");
        assert!(report.counts().unreleased >= 1, "{name}");
        assert!(report.to_string().contains("USER"), "{name}");
    }
}

/// The default mode, a handler that leaks on one request in three from the
/// 10th on, 60 requests on a 2-thread pool: found during the run every time,
/// and every leaked bind reported exactly once by the end.
#[test]
fn the_default_mode_finds_a_recurring_leak_in_every_run() {
    let _serial = tl_audit::testing::serial();
    let leaks = (10..60).filter(|r| r % 3 == 2).count() as u64;
    for run in 0..5 {
        let (dispatch, layer, _json) = capture();
        tracing::dispatcher::with_default(&dispatch, || {
            let auditor = Auditor::builder().ignore_env().manual().install().unwrap();
            assert_eq!(auditor.mode(), Mode::Sampled);
            let pool = StdPool::named("default-mode");
            let (done, finished) = mpsc::channel();
            for request in 0..60 {
                let done = done.clone();
                let job = Box::new(move || {
                    let _ = tl_audit::task("handle_request", || {
                        USER.set(format!("user-{request}"));
                        if request >= 10 && request % 3 == 2 {
                            return Err("payment declined");
                        }
                        USER.remove();
                        Ok(())
                    });
                    done.send(()).unwrap();
                });
                pool.jobs.as_ref().unwrap().send(job).unwrap();
            }
            for _ in 0..60 {
                finished.recv().unwrap();
            }
            assert!(!layer.is_empty(), "run {run}: nothing found during the run");
            let report = auditor.finish().unwrap();
            // Only this pool's: a rayon pool of an earlier test may still be
            // stopping, and the gate rightly reports what its threads hold.
            let ours = report
                .findings()
                .iter()
                .filter(|f| f.thread.display_name().starts_with("default-mode-"))
                .count() as u64;
            assert_eq!(ours, leaks, "run {run}: {report}");
        });
    }
}

#[test]
#[cfg(feature = "tokio")] // `tl_audit::tokio::instrument`
fn a_tokio_worker_that_parks_with_a_value_an_async_task_left_is_reported() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = Auditor::builder().ignore_env().manual().install().unwrap();
        let runtime = tl_audit::tokio::instrument(&mut tokio::runtime::Builder::new_multi_thread())
            .worker_threads(2)
            .thread_name("async-worker")
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::spawn(async {
                USER.set("set before an await".to_owned());
                tokio::task::yield_now().await;
            })
            .await
            .unwrap();
        });
        wait_for(|| layer.findings().iter().any(|f| found_by(f) == Some("park")));
        let found = layer.findings();
        let parked: Vec<_> = found
            .iter()
            .filter(|f| found_by(f) == Some("park"))
            .collect();
        assert_eq!(parked.len(), 1, "{found:?}");
        assert_eq!(parked[0].key(), Some("USER"));
        assert_eq!(parked[0].thread_name(), Some("async-worker"));
        assert!(
            parked[0].message.contains("went idle (parked)"),
            "{}",
            parked[0].message
        );
        drop(runtime);
        drop(auditor);
    });
}

#[test]
fn per_thread_caches_and_long_tasks_are_not_reported() {
    static CACHE: ThreadLocal<Vec<u8>> = ThreadLocal::new().named("CACHE").per_thread();
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = Auditor::builder()
            .mode(Mode::Deny)
            .ignore_env()
            .interval(Duration::from_millis(5))
            .idle_after(Duration::ZERO)
            .install()
            .unwrap();
        let worker = Worker::new("cache-and-long-task");
        worker.run(|| CACHE.set(vec![0; 64]));
        worker.run(|| {
            tl_audit::task("long_report", || {
                let _user = USER.scope("reporting".to_owned());
                // Scans run meanwhile: the value is held for the whole task.
                std::thread::sleep(Duration::from_millis(100));
            });
        });
        std::thread::sleep(Duration::from_millis(30));
        let report = auditor.finish().unwrap();
        assert!(report.is_clean(), "{report}");
        assert!(layer.is_empty(), "{:?}", layer.findings());
        drop(worker);
    });
}

#[test]
fn a_value_bound_by_an_initializer_says_so() {
    static DEPTH: ThreadLocal<u32> = ThreadLocal::with_initial(|| 0).named("DEPTH");
    let _serial = tl_audit::testing::serial();
    let worker = Worker::new("initializer");
    let failure = AuditScope::new()
        .run(|| worker.run(|| DEPTH.get()))
        .unwrap_err();
    let AuditFailure::Findings(report) = &failure else {
        panic!("{failure}");
    };
    assert_eq!(report.findings().len(), 1, "{report}");
    assert!(report.findings()[0].by_initializer);
    let text = failure.to_string();
    assert!(
        text.contains("by the key's initializer, on a read (get/with) at ")
            && text.contains("If it is a per-thread cache, declare the key .per_thread() at "),
        "{text}"
    );
}

#[test]
fn a_leftover_of_nested_tasks_names_the_innermost_task() {
    let _serial = tl_audit::testing::serial();
    let worker = Worker::new("nested");
    let failure = AuditScope::new()
        .run(|| {
            worker.run(|| {
                tl_audit::task("handle_order", || {
                    tl_audit::task("charge_card", || {
                        USER.set("card holder".to_owned());
                    });
                });
            })
        })
        .unwrap_err();
    let AuditFailure::Findings(report) = &failure else {
        panic!("{failure}");
    };
    assert_eq!(report.findings().len(), 1, "{report}");
    assert_eq!(report.findings()[0].task, Some("charge_card"), "{report}");
    assert!(
        failure
            .to_string()
            .contains("task charge_card, entered at ")
    );
}
