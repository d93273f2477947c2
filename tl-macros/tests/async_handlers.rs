//! Thread-locals that travel with a task on a 4-worker tokio runtime:
//! `#[thread_local_scoped]` on `async fn` (free functions, `&self` and
//! `&mut self` methods, the derive's `self` form) and
//! `ThreadLocal::scope_future`. Every task reads its own value after every
//! yield, nothing is left bound on a worker, and every way out (completion,
//! early `return`, `?`, panic, cancellation) drops the value exactly once.

#![cfg(not(miri))] // tokio's runtime is out of Miri's reach

use std::future::Future;
use std::num::ParseIntError;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tl_core::{ThreadLocal, ThreadLocalScoped, checkpoint, registry, thread_local_scoped};
use tokio::runtime::{Builder, Runtime};
use tokio::task::yield_now;

const TASKS: u64 = 800;
const YIELDS: u32 = 10;

static USER: ThreadLocal<u64> = ThreadLocal::new().named("async::USER");
static ADAPTED: ThreadLocal<u64> = ThreadLocal::new().named("async::ADAPTED");
// One key per test: tests run in parallel, and `bound_anywhere` sees every
// thread of the process, including other tests' workers in mid-poll.
static ABORTED: ThreadLocal<Counted> = ThreadLocal::new().named("async::ABORTED");
static PANICKED: ThreadLocal<Counted> = ThreadLocal::new().named("async::PANICKED");
static COMPLETED: ThreadLocal<Counted> = ThreadLocal::new().named("async::COMPLETED");
static TENANT_USER: ThreadLocal<u64> = ThreadLocal::new().named("async::TENANT_USER");
static NESTED: ThreadLocal<&'static str> = ThreadLocal::new().named("async::NESTED");

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .expect("runtime")
}

/// Keys named `name` bound on any registered thread (the workers are alive).
fn bound_anywhere(name: &str) -> usize {
    registry::snapshot_all()
        .iter()
        .flat_map(|thread| thread.bound())
        .filter(|entry| entry.key.name == Some(name))
        .count()
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// === 800 tasks, each its own value ===

/// How a task leaves its handler.
#[derive(Clone, Copy)]
enum Exit {
    End,
    EarlyReturn,
    QuestionMark,
}

#[thread_local_scoped(USER)]
async fn attribute_task(
    id: u64,
    exit: Exit,
    wrong: Arc<AtomicUsize>,
) -> Result<u64, ParseIntError> {
    USER.set(id);
    for i in 0..YIELDS {
        yield_now().await;
        if USER.get() != Some(id) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
        if i == YIELDS / 2 {
            match exit {
                Exit::End => {}
                Exit::EarlyReturn => return Ok(0),
                Exit::QuestionMark => {
                    let _: u64 = "not a number".parse()?;
                }
            }
        }
    }
    Ok(id)
}

async fn adapter_body(id: u64, wrong: Arc<AtomicUsize>) -> u64 {
    for _ in 0..YIELDS {
        yield_now().await;
        if ADAPTED.get() != Some(id) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
    id
}

#[test]
fn every_task_reads_its_own_value_on_4_workers() {
    let runtime = runtime();
    let wrong = Arc::new(AtomicUsize::new(0));
    let exits = [Exit::End, Exit::EarlyReturn, Exit::QuestionMark];
    runtime.block_on(async {
        let mut handles = Vec::new();
        for id in 1..=TASKS {
            let exit = exits[(id % 3) as usize];
            handles.push(tokio::spawn(attribute_task(id, exit, wrong.clone())));
            let body = adapter_body(id, wrong.clone());
            handles.push(tokio::spawn(async move {
                let result = ADAPTED.scope_future(id, body).await;
                Ok(result)
            }));
        }
        let mut errors = 0;
        for handle in handles {
            if handle.await.expect("no panic").is_err() {
                errors += 1;
            }
        }
        assert_eq!(
            errors,
            TASKS / 3 + u64::from(TASKS % 3 == 2),
            "the `?` paths"
        );
    });
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "reads of another task's value"
    );
    assert_eq!(bound_anywhere("async::USER"), 0, "left bound on a worker");
    assert_eq!(
        bound_anywhere("async::ADAPTED"),
        0,
        "left bound on a worker"
    );
}

// === what a plain `set` does across `.await` (the docs' numbers) ===

static PLAIN: ThreadLocal<u64> = ThreadLocal::new().named("async::PLAIN");

/// 320 tasks each `set` their id, yield once, then read and `remove`: a
/// task may resume on another worker (it sees that worker's value, or
/// none), and the worker it left still holds its value. Prints the counts
/// that the crate docs and the README quote.
#[test]
fn a_plain_set_does_not_survive_an_await() {
    const PLAIN_TASKS: u64 = 320;
    let runtime = runtime();
    let (missing, foreign, removed_foreign) = runtime.block_on(async {
        let handles: Vec<_> = (0..PLAIN_TASKS)
            .map(|id| {
                tokio::spawn(async move {
                    PLAIN.set(id);
                    yield_now().await;
                    let read = PLAIN.get();
                    let removed = PLAIN.remove();
                    (
                        read.is_none(),
                        read.is_some_and(|read| read != id),
                        removed.is_some_and(|removed| removed != id),
                    )
                })
            })
            .collect();
        let mut counts = (0, 0, 0);
        for handle in handles {
            let (missing, foreign, removed_foreign) = handle.await.unwrap();
            counts.0 += usize::from(missing);
            counts.1 += usize::from(foreign);
            counts.2 += usize::from(removed_foreign);
        }
        counts
    });
    let left = bound_anywhere("async::PLAIN");
    println!(
        "{PLAIN_TASKS} tasks: {missing} read no value, {foreign} read another task's, \
         {removed_foreign} removed another task's, {left} values left on workers"
    );
    assert!(
        missing + foreign > 0,
        "a plain set crossed an await intact in every task"
    );
}

// === cancellation and panics ===

#[thread_local_scoped(ABORTED)]
async fn sleeps_with_value(drops: Arc<AtomicUsize>, started: Arc<AtomicBool>) {
    ABORTED.set(Counted(drops));
    started.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn abort_mid_sleep_drops_the_value_once() {
    let runtime = runtime();
    runtime.block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(sleeps_with_value(drops.clone(), started.clone()));
        wait_for(&started).await;
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        // The adapter: the value is the scope's own.
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let handle = tokio::spawn(ABORTED.scope_future(Counted(drops.clone()), async move {
            flag.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }));
        wait_for(&started).await;
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
    assert_eq!(bound_anywhere("async::ABORTED"), 0);
}

#[thread_local_scoped(PANICKED)]
async fn panics_after_yield(drops: Arc<AtomicUsize>) {
    PANICKED.set(Counted(drops));
    yield_now().await;
    assert!(PANICKED.is_set());
    panic!("handler failed");
}

#[test]
fn panicking_poll_unwinds_cleanly() {
    let runtime = runtime();
    runtime.block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let result = tokio::spawn(panics_after_yield(drops.clone())).await;
        assert!(result.unwrap_err().is_panic());
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        let drops = Arc::new(AtomicUsize::new(0));
        let result = tokio::spawn(PANICKED.scope_future(Counted(drops.clone()), async {
            yield_now().await;
            panic!("body failed");
        }))
        .await;
        assert!(result.unwrap_err().is_panic());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
    assert_eq!(bound_anywhere("async::PANICKED"), 0);
}

#[test]
fn completion_drops_the_value_once() {
    let runtime = runtime();
    runtime.block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let seen = tokio::spawn(COMPLETED.scope_future(Counted(drops.clone()), async {
            yield_now().await;
            COMPLETED.with(|value| value.is_some())
        }))
        .await
        .unwrap();
        assert!(seen);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

// === nesting ===

#[thread_local_scoped(NESTED)]
async fn inner_handler() -> (Option<&'static str>, Option<&'static str>) {
    let before = NESTED.get();
    NESTED.set("inner");
    yield_now().await;
    (before, NESTED.get())
}

#[thread_local_scoped(NESTED)]
async fn outer_handler() -> Vec<Option<&'static str>> {
    NESTED.set("outer");
    yield_now().await;
    let (inner_saw_first, inner_saw_last) = inner_handler().await;
    let after_inner = NESTED.get();
    yield_now().await;
    vec![inner_saw_first, inner_saw_last, after_inner, NESTED.get()]
}

#[test]
fn nested_guarded_async_fns_restore_the_outer_binding() {
    let runtime = runtime();
    let seen = runtime.block_on(async {
        let handles: Vec<_> = (0..64).map(|_| tokio::spawn(outer_handler())).collect();
        let mut seen = Vec::new();
        for handle in handles {
            seen.push(handle.await.unwrap());
        }
        seen
    });
    for seen in seen {
        assert_eq!(
            seen,
            [Some("outer"), Some("inner"), Some("outer"), Some("outer")]
        );
    }
    // Inside an adapter's scope: the handler sees the scope's value until
    // it binds its own, and the scope's value is back after it.
    let seen = runtime.block_on(runtime.spawn(NESTED.scope_future("scope", async {
        let (first, last) = inner_handler().await;
        yield_now().await;
        (first, last, NESTED.get())
    })));
    assert_eq!(seen.unwrap(), (Some("scope"), Some("inner"), Some("scope")));
    assert_eq!(bound_anywhere("async::NESTED"), 0);
}

// === services ===

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped]
    tenant: ThreadLocal<u64>,
    handled: u64,
}

impl Service {
    #[thread_local_scoped]
    async fn handle(&self, tenant: u64) -> bool {
        self.tenant.set(tenant);
        let mut all_own = true;
        for _ in 0..YIELDS {
            yield_now().await;
            all_own &= self.tenant.get() == Some(tenant);
        }
        all_own
    }

    #[thread_local_scoped(self.tenant, TENANT_USER)]
    async fn handle_mut(&mut self, tenant: u64) -> Option<u64> {
        self.tenant.set(tenant);
        TENANT_USER.set(tenant);
        yield_now().await;
        self.handled += 1;
        self.tenant.get()
    }
}

#[test]
fn service_fields_travel_with_the_task() {
    let runtime = runtime();
    let service = Arc::new(Service {
        tenant: ThreadLocal::new(),
        handled: 0,
    });
    let all_own = runtime.block_on(async {
        let handles: Vec<_> = (0..200)
            .map(|tenant| {
                let service = service.clone();
                tokio::spawn(async move { service.handle(tenant).await })
            })
            .collect();
        let mut all_own = true;
        for handle in handles {
            all_own &= handle.await.unwrap();
        }
        all_own
    });
    assert!(all_own);
    assert_eq!(bound_anywhere("Service.tenant"), 0);

    let mut service = Arc::try_unwrap(service).unwrap_or_else(|_| unreachable!());
    let tenant = runtime.block_on(service.handle_mut(9));
    assert_eq!((tenant, service.handled), (Some(9), 1));
    assert!(!service.tenant.is_set() && !TENANT_USER.is_set());
}

// === parameters drop inside the task ===

static PARAMS: ThreadLocal<u64> = ThreadLocal::new().named("async::PARAMS");

/// What a dropped [`Noted`] saw: its name, whether the thread was inside a
/// task, and `PARAMS`.
type DropLog = Arc<Mutex<Vec<(&'static str, bool, Option<u64>)>>>;

/// Logs its drop.
struct Noted(&'static str, DropLog);

impl Drop for Noted {
    fn drop(&mut self) {
        let seen = (self.0, checkpoint::in_task(), PARAMS.get());
        self.1.lock().unwrap().push(seen);
    }
}

struct Fields {
    x: Noted,
    _y: Noted,
}

struct Owner {
    _noted: Noted,
}

/// Pending once, then ready.
async fn pending_once() {
    let mut pending = true;
    std::future::poll_fn(|_| {
        if std::mem::take(&mut pending) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

// The same handler twice, plain and scoped; the bodies name no parameter.
impl Owner {
    #[allow(
        clippy::too_many_arguments,
        clippy::toplevel_ref_arg,
        reason = "every kind of parameter"
    )]
    async fn plain(
        self,
        _first: Noted,
        _: Noted,
        (_a, _b): (Noted, Noted),
        Fields { x: _x, .. }: Fields,
        ref _borrowed: Noted,
        log: DropLog,
    ) -> usize {
        let _local = Noted("local", log.clone());
        pending_once().await;
        Noted("temporary", log).0.len()
    }

    #[allow(clippy::too_many_arguments, reason = "every kind of parameter")]
    #[thread_local_scoped(PARAMS)]
    async fn scoped(
        self,
        _first: Noted,
        _: Noted,
        (_a, _b): (Noted, Noted),
        Fields { x: _x, .. }: Fields,
        ref _borrowed: Noted,
        log: DropLog,
    ) -> usize {
        PARAMS.set(1);
        let _local = Noted("local", log.clone());
        pending_once().await;
        Noted("temporary", log).0.len()
    }
}

/// An `async fn`'s parameters drop at the end of its body, after its
/// locals, in reverse order, also those the body never names: under the
/// attribute, inside the task, where their destructors see the task's
/// values, and in the same order as without it.
#[test]
fn unused_parameters_drop_inside_the_task() {
    let run = |scoped: bool| {
        let log = DropLog::default();
        let noted = |name| Noted(name, log.clone());
        let owner = Owner {
            _noted: noted("self"),
        };
        let args = (
            noted("first"),
            noted("wild"),
            (noted("a"), noted("b")),
            Fields {
                x: noted("x"),
                _y: noted("rest"),
            },
            noted("borrowed"),
        );
        let (first, wild, pair, fields, borrowed) = args;
        let len = if scoped {
            block_on(owner.scoped(first, wild, pair, fields, borrowed, log.clone()))
        } else {
            block_on(owner.plain(first, wild, pair, fields, borrowed, log.clone()))
        };
        assert_eq!(len, "temporary".len());
        log.lock().unwrap().clone()
    };
    let plain = run(false);
    let scoped = run(true);
    let names = |log: &[(&'static str, bool, Option<u64>)]| {
        log.iter().map(|(name, ..)| *name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&scoped),
        names(&plain),
        "the plain `async fn`'s order"
    );
    assert_eq!(scoped.len(), 10);
    let outside: Vec<_> = scoped
        .iter()
        .filter(|&&(_, in_task, value)| !in_task || value != Some(1))
        .collect();
    assert!(
        outside.is_empty(),
        "dropped outside the task, or without its value: {outside:?}"
    );
    assert!(!PARAMS.is_set());
}
