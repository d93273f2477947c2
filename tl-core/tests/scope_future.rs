//! `ThreadLocal::scope_future` without an async runtime (so Miri runs it):
//! futures polled by hand with a no-op waker, moved between threads between
//! polls. The value is bound only while polled, the thread's own binding is
//! restored after every poll (a panicking one too), and the value is dropped
//! exactly once, on completion or when the future is dropped.

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::thread;

use common::pending::{Pending, poll_once};
use common::{Counted, Drops};
use tl_core::{ScopeFuture, ThreadLocal};

static REQUEST: ThreadLocal<u32> = ThreadLocal::new().named("scope_future::REQUEST");
static COUNTED: ThreadLocal<Counted> = ThreadLocal::new().named("scope_future::COUNTED");

/// A future that is pending `n` times, recording what `REQUEST` reads at
/// each poll.
struct Yields {
    left: u32,
    seen: Vec<Option<u32>>,
}

impl Future for Yields {
    type Output = Vec<Option<u32>>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.seen.push(REQUEST.get());
        if self.left == 0 {
            Poll::Ready(std::mem::take(&mut self.seen))
        } else {
            self.left -= 1;
            Poll::Pending
        }
    }
}

fn yields(n: u32) -> Yields {
    Yields {
        left: n,
        seen: Vec::new(),
    }
}

const fn assert_send<T: Send>() {}
const _: () = assert_send::<ScopeFuture<'static, u32, Yields>>();

#[test]
fn bound_only_while_polled_and_the_threads_binding_restored() {
    let _outer = REQUEST.scope(1);
    let mut future = pin!(REQUEST.scope_future(7, yields(2)));
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(REQUEST.get(), Some(1), "the thread's own binding is back");
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(
        poll_once(future.as_mut()),
        Poll::Ready(vec![Some(7), Some(7), Some(7)])
    );
    assert_eq!(REQUEST.get(), Some(1));
}

#[test]
fn the_value_follows_the_future_across_threads() {
    let mut future = Box::pin(REQUEST.scope_future(7, yields(3)));
    assert!(poll_once(future.as_mut()).is_pending());
    for _ in 0..2 {
        future = thread::spawn(move || {
            REQUEST.set(99); // another task's value left on this worker
            assert!(poll_once(future.as_mut()).is_pending());
            assert_eq!(REQUEST.get(), Some(99));
            future
        })
        .join()
        .unwrap();
    }
    assert_eq!(poll_once(future.as_mut()), Poll::Ready(vec![Some(7); 4]));
    assert!(!REQUEST.is_set());
}

#[test]
fn set_and_remove_in_the_body_travel_with_the_future() {
    let mut future = pin!(REQUEST.scope_future(1, async {
        assert_eq!(REQUEST.set(2), Some(1), "the body may replace the value");
        Pending::once().await;
        let after_set = REQUEST.get();
        REQUEST.remove();
        Pending::once().await;
        (after_set, REQUEST.get())
    }));
    let _outer = REQUEST.scope(5);
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(REQUEST.get(), Some(5));
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(
        REQUEST.get(),
        Some(5),
        "a removal inside does not remove the thread's"
    );
    assert_eq!(poll_once(future.as_mut()), Poll::Ready((Some(2), None)));
    assert_eq!(REQUEST.get(), Some(5));
}

#[test]
fn the_value_is_dropped_once_on_completion() {
    let drops = Drops::new();
    let mut future = pin!(COUNTED.scope_future(drops.counted(1), async {
        Pending::once().await;
        COUNTED.with(|value| value.map(|value| value.value))
    }));
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(drops.get(), 0);
    assert_eq!(poll_once(future.as_mut()), Poll::Ready(Some(1)));
    assert_eq!(drops.get(), 1, "dropped when the future completes");
    assert!(!COUNTED.is_set());
}

/// Records whether `COUNTED` was bound when it was dropped.
struct SeesValueOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for SeesValueOnDrop {
    fn drop(&mut self) {
        self.0
            .store(COUNTED.is_set(), std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_future_drops_the_value_once_after_the_inner_future() {
    let drops = Drops::new();
    let saw = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let witness = SeesValueOnDrop(saw.clone());
    let mut future = Box::pin(COUNTED.scope_future(drops.counted(1), async move {
        let _witness = witness;
        Pending::once().await;
    }));
    assert!(poll_once(future.as_mut()).is_pending());
    // Cancelled on another thread: dropped there, inside the scope.
    thread::spawn(move || drop(future)).join().unwrap();
    assert_eq!(drops.get(), 1);
    assert!(
        saw.load(std::sync::atomic::Ordering::SeqCst),
        "the inner future's drop saw the value"
    );
    // Never polled: dropped all the same.
    drop(COUNTED.scope_future(drops.counted(2), async {}));
    assert_eq!(drops.get(), 2);
    assert!(!COUNTED.is_set());
}

#[test]
fn a_panicking_poll_restores_the_thread() {
    let drops = Drops::new();
    let _outer = COUNTED.scope(drops.counted(0));
    let mut future = Box::pin(COUNTED.scope_future(drops.counted(1), async {
        Pending::once().await;
        panic!("the body failed");
    }));
    assert!(poll_once(future.as_mut()).is_pending());
    let result = catch_unwind(AssertUnwindSafe(|| poll_once(future.as_mut())));
    assert!(result.is_err());
    assert_eq!(
        COUNTED.with(|value| value.map(|value| value.value)),
        Some(0)
    );
    assert_eq!(drops.get(), 0);
    drop(future);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_service_field_key_borrowed_by_the_future() {
    struct Service {
        tenant: ThreadLocal<String>,
    }
    let service = Service {
        tenant: ThreadLocal::new(),
    };
    let mut future = pin!(service.tenant.scope_future("acme".to_owned(), async {
        Pending::once().await;
        service.tenant.get()
    }));
    assert!(poll_once(future.as_mut()).is_pending());
    assert!(!service.tenant.is_set());
    assert_eq!(
        poll_once(future.as_mut()),
        Poll::Ready(Some("acme".to_owned()))
    );
}

#[test]
fn nested_scopes_of_one_key_unwind_in_order() {
    let mut future = pin!(REQUEST.scope_future(1, async {
        let inner = REQUEST.scope_future(2, async {
            Pending::once().await;
            REQUEST.get()
        });
        let inner_saw = inner.await;
        Pending::once().await;
        (inner_saw, REQUEST.get())
    }));
    let seen = loop {
        match poll_once(future.as_mut()) {
            Poll::Ready(seen) => break seen,
            Poll::Pending => assert!(!REQUEST.is_set()),
        }
    };
    assert_eq!(seen, (Some(2), Some(1)));
}

// === regressions from review ===

/// A `Scope` held across an `.await` (a mistake on a multi-threaded
/// executor, but safe code on a single-threaded one) restores the task's
/// value with its older bind: it is still the task's, and the thread's own
/// value comes back, not dropped.
#[test]
fn scope_held_across_await_leaves_the_threads_value_alone() {
    thread::spawn(|| {
        let drops = Drops::new();
        let _thread_binding = COUNTED.scope(drops.counted(1));
        let inner = drops.counted(3);
        let mut future = pin!(COUNTED.scope_future(drops.counted(2), async move {
            let scope = COUNTED.scope(inner);
            Pending::once().await;
            drop(scope);
            Pending::once().await;
            COUNTED.with(|c| c.map(|c| c.value))
        }));
        for (poll, dropped) in [(1, 0), (2, 1)] {
            assert!(poll_once(future.as_mut()).is_pending());
            assert_eq!(COUNTED.with(|c| c.map(|c| c.value)), Some(1), "poll {poll}");
            // The second poll ends the scope, which drops its value (3).
            assert_eq!(drops.get(), dropped, "poll {poll}");
        }
        assert_eq!(poll_once(future.as_mut()), Poll::Ready(Some(2)));
        assert_eq!(COUNTED.with(|c| c.map(|c| c.value)), Some(1));
        assert_eq!(
            drops.get(),
            2,
            "the scope's value and the task's, once each"
        );
    })
    .join()
    .unwrap();
}

/// Putting the thread's value back "as it was" keeps the mark that its
/// key's initializer bound it, so the auditor's advice stays right.
#[test]
fn restoring_a_value_keeps_its_by_initializer_mark() {
    static DEPTH: ThreadLocal<u32> = ThreadLocal::with_initial(|| 7).named("scope_future::DEPTH");
    fn by_initializer() -> bool {
        tl_core::checkpoint::bound()
            .iter()
            .find(|l| l.entry.key.name == Some("scope_future::DEPTH"))
            .is_some_and(|l| l.entry.by_initializer)
    }
    thread::spawn(|| {
        assert_eq!(DEPTH.get(), Some(7));
        assert!(by_initializer());
        let mut future = pin!(DEPTH.scope_future(1, async { DEPTH.get() }));
        assert_eq!(poll_once(future.as_mut()), Poll::Ready(Some(1)));
        assert!(by_initializer(), "after a poll");
        {
            let _guard = DEPTH.guard();
            DEPTH.set(3);
        }
        assert_eq!(DEPTH.get(), Some(7));
        assert!(by_initializer(), "after a guard");
    })
    .join()
    .unwrap();
}

/// A value whose key died, dropped by tl-core while the future is dropped
/// during an unrelated unwind: its panicking `Drop` is caught (and counted),
/// not a second panic that aborts the process.
#[test]
fn a_dead_keys_value_dropped_while_unwinding_is_caught() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the value's drop panics");
        }
    }
    thread::spawn(|| {
        use tl_core::__private::{Location, carried, task_future};
        // What `#[thread_local_scoped(self.key)]` on an `async fn` expands
        // to: the task's state pins the key, so it may die between polls.
        let key = std::sync::Arc::new(ThreadLocal::<Bomb>::new());
        let handle = std::sync::Arc::clone(&key);
        let state = (carried(&*key), ());
        let mut future = Box::pin(task_future("bomb", Location::caller(), state, async move {
            handle.set(Bomb);
            drop(handle);
            Pending::once().await;
        }));
        assert!(poll_once(future.as_mut()).is_pending());
        drop(key); // the key dies between polls
        let before = tl_core::stats().drop_panics;
        let unwound = catch_unwind(AssertUnwindSafe(move || {
            struct DropWhileUnwinding<F>(Option<F>);
            impl<F> Drop for DropWhileUnwinding<F> {
                fn drop(&mut self) {
                    drop(self.0.take());
                }
            }
            let _later = DropWhileUnwinding(Some(future));
            panic!("an unrelated panic");
        }));
        assert!(unwound.is_err());
        assert_eq!(tl_core::stats().drop_panics, before + 1);
    })
    .join()
    .unwrap();
}

/// Whether the thread was inside a task, and `REQUEST`'s value.
type Seen = Option<(bool, Option<u32>)>;

/// What a `TaskFuture`'s body saw when it was dropped.
struct SeesOnDrop(std::sync::Arc<std::sync::Mutex<Seen>>);

impl Drop for SeesOnDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some((tl_core::checkpoint::in_task(), REQUEST.get()));
    }
}

/// Task ends of the tasks named below, counted by the hook.
static CANCELLED_ENDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static COMPLETED_ENDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_task_ends(end: &tl_core::checkpoint::TaskEnd<'_>) {
    let counter = match end.task() {
        "scope_future::cancelled" => &CANCELLED_ENDS,
        "scope_future::completed" => &COMPLETED_ENDS,
        _ => return,
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// A `TaskFuture` (what `#[thread_local_scoped]` makes of an `async fn`)
/// dropped before it completes drops its body inside its task, as a poll
/// runs it: the body's destructors see a task scope and the task's carried
/// value, and the auditor hears of that task's end. A completed one, whose
/// body was dropped in its last poll, enters no task when dropped.
#[test]
fn a_cancelled_task_future_drops_its_body_inside_the_task() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::{Arc, Mutex};
    use tl_core::__private::{Location, carried, task_future};
    use tl_core::checkpoint;

    let previous = checkpoint::set_task_end_hook(Some(count_task_ends));
    assert!(!checkpoint::in_task());

    let seen = Arc::new(Mutex::new(None));
    let sees = SeesOnDrop(seen.clone());
    let state = (carried(&REQUEST), ());
    let mut future = Box::pin(task_future(
        "scope_future::cancelled",
        Location::caller(),
        state,
        async move {
            let _sees = sees;
            REQUEST.set(7);
            Pending::once().await;
        },
    ));
    assert!(poll_once(future.as_mut()).is_pending());
    assert_eq!(CANCELLED_ENDS.load(SeqCst), 1, "the poll was a task");
    drop(future); // cancelled
    assert_eq!(
        *seen.lock().unwrap(),
        Some((true, Some(7))),
        "the body's destructors ran inside the task, with its value"
    );
    assert_eq!(CANCELLED_ENDS.load(SeqCst), 2, "the drop was a task");
    assert!(!checkpoint::in_task() && !REQUEST.is_set());

    let mut future = Box::pin(task_future(
        "scope_future::completed",
        Location::caller(),
        (carried(&REQUEST), ()),
        Pending::once(),
    ));
    assert!(poll_once(future.as_mut()).is_pending());
    assert!(poll_once(future.as_mut()).is_ready());
    drop(future);
    assert_eq!(
        COMPLETED_ENDS.load(SeqCst),
        2,
        "one task per poll, none for the drop"
    );

    checkpoint::set_task_end_hook(previous);
}
