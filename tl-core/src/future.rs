//! Futures whose thread-local bindings travel with them: [`ScopeFuture`]
//! (from [`ThreadLocal::scope_future`]) binds one value only while the
//! future is polled; `TaskFuture` (what `#[thread_local_scoped]` generates
//! for an `async fn`) carries whatever the body binds for its listed keys.
//!
//! # Design
//! As tokio's `TaskLocalFuture` and tracing's `Instrumented`: every poll
//! enters the keys' scopes (see [`crate::carry`]), polls the inner future,
//! and leaves the scopes in a guard's `Drop`, so a panicking poll restores
//! the thread too. Nothing is bound between polls, so nothing is left on a
//! worker thread when the task moves or the worker parks. The inner future
//! is dropped inside the scopes (when it completes, or when the outer future
//! is dropped), so its destructors see the task's values; the values are
//! dropped right after, on the thread that completes or drops the future.
//! A `TaskFuture` dropped before it completed (cancelled) also enters its
//! task scope around that drop, as a poll does, so the body's destructors
//! run inside the task; a completed one enters nothing. A poll allocates
//! nothing.
//!
//! # Invariants
//! - `future` is structurally pinned: it is only ever polled or dropped in
//!   place (`Option::set(None)`), never moved, and the wrappers implement
//!   neither `Unpin` by hand nor a `Drop` that moves it (`TaskFuture`'s
//!   `Drop` drops its `Travel` in place, once, through `ManuallyDrop`).
//! - `future` is `None` exactly when the inner future completed.

use core::fmt;
use core::future::Future;
use core::mem::ManuallyDrop;
use core::panic::Location;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::carry::{Carried, Carry};
use crate::checkpoint::TaskScope;
use crate::local::ThreadLocal;

/// The inner future and the keys it carries; shared by both wrappers.
struct Travel<C: Carry, F> {
    carry: C,
    future: Option<F>,
}

impl<C: Carry, F: Future> Travel<C, F> {
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned (see the module docs);
        // `carry` is not pinned and may be used by `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: pinned in place, never moved.
        let mut future = unsafe { Pin::new_unchecked(&mut this.future) };
        let Some(inner) = future.as_mut().as_pin_mut() else {
            panic!("tl-core: a scoped future was polled after it completed");
        };
        let scope = this.carry.enter(true);
        let poll = inner.poll(cx);
        if poll.is_ready() {
            // Inside the scope: the inner future's destructors see the values.
            future.set(None);
        }
        drop(scope);
        if poll.is_ready() {
            this.carry.clear();
        }
        poll
    }
}

impl<C: Carry, F> Drop for Travel<C, F> {
    fn drop(&mut self) {
        if self.future.is_some() {
            // Cancelled: drop the inner future inside the scope. Never panic
            // here (an enclosing `with` of a key leaves it as the thread has it).
            let scope = self.carry.enter(false);
            // SAFETY: `future` is structurally pinned; dropping it in place
            // is allowed (`Pin` guarantees drop before the memory is reused).
            unsafe { Pin::new_unchecked(&mut self.future) }.set(None);
            drop(scope);
        }
        self.carry.clear();
    }
}

// === impl ScopeFuture ===

/// A future that binds a value for a [`ThreadLocal`] only while it is being
/// polled: created by [`ThreadLocal::scope_future`].
///
/// Each poll binds the value on the polling thread, polls the inner future,
/// and unbinds it again, restoring whatever the thread had bound before,
/// also when the poll panics. If the inner future replaces or removes the
/// value, the new state is what travels to the next poll. The value (or its
/// replacement) is dropped once: when the inner future completes, or when
/// this future is dropped (cancellation), on that thread, after the inner
/// future, whose destructors still see it.
///
/// `Send` exactly when the value and the inner future are.
#[must_use = "futures do nothing unless polled or `.await`ed"]
pub struct ScopeFuture<'k, T: 'static, F> {
    inner: Travel<Carried<'k, T>, F>,
}

impl<T: 'static> ThreadLocal<T> {
    /// Binds `value` while `future` is polled, on whichever thread polls it:
    /// the async form of [`scope`](Self::scope) (as tokio's
    /// `LocalKey::scope`, or tracing's `Instrument`). The value is recorded
    /// as bound here.
    ///
    /// A plain [`set`](Self::set) does not survive an `.await` on a
    /// multi-threaded executor: the task may resume on another worker, which
    /// sees another task's value or none, and the value stays behind on the
    /// first worker. The adapter binds the value on every poll and unbinds
    /// it after, so the task sees its own value on every worker and nothing
    /// is left behind.
    ///
    /// ```
    /// use core::future::Future;
    /// use core::pin::pin;
    /// use core::task::{Context, Poll, Waker};
    /// use tl_core::ThreadLocal;
    ///
    /// static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
    ///
    /// async fn handle() -> Option<u64> {
    ///     REQUEST_ID.get() // deep in the call chain, after any `.await`
    /// }
    ///
    /// let future = pin!(REQUEST_ID.scope_future(7, handle()));
    /// let poll = future.poll(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(poll, Poll::Ready(Some(7)));
    /// assert!(!REQUEST_ID.is_set()); // bound only while polled
    /// ```
    ///
    /// A `ThreadLocal` field of a service works the same way: the future
    /// borrows the service.
    ///
    /// # Panics
    /// A poll panics if an enclosing [`with`](Self::with) on the polling
    /// thread borrows this thread-local's value (it cannot be replaced
    /// while borrowed, as with `set`).
    #[track_caller]
    pub fn scope_future<F: Future>(&self, value: T, future: F) -> ScopeFuture<'_, T, F> {
        let meta = self.bind_meta_for(&value, Location::caller());
        ScopeFuture {
            inner: Travel {
                carry: Carried::bound(self, value, meta),
                future: Some(future),
            },
        }
    }
}

impl<T: 'static, F: Future> Future for ScopeFuture<'_, T, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: never moved out, and no
        // `Drop` or `Unpin` impl here.
        unsafe { self.map_unchecked_mut(|this| &mut this.inner) }.poll(cx)
    }
}

impl<T: 'static, F> fmt::Debug for ScopeFuture<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeFuture")
            .field("key", &self.inner.carry)
            .field("completed", &self.inner.future.is_none())
            .finish_non_exhaustive()
    }
}

// === impl TaskFuture ===

/// What `#[thread_local_scoped]` makes of an `async fn`'s body: carries the
/// listed keys' bindings between polls, and makes each poll a task for the
/// auditor (a [`TaskScope`] around it, entered before the keys' scopes and
/// left after them, so that only values bound during the poll and not
/// carried are left over). Dropped before it completes (cancelled), it drops
/// the body inside the same scopes, so the body's destructors are the
/// task's too.
#[must_use = "futures do nothing unless polled or `.await`ed"]
pub struct TaskFuture<C: Carry, F> {
    task: &'static str,
    location: &'static Location<'static>,
    /// Structurally pinned; dropped in place exactly once, by this type's
    /// `Drop` (inside the task scope if the body has not completed), and
    /// never touched after that.
    inner: ManuallyDrop<Travel<C, F>>,
}

impl<C: Carry, F: Future> TaskFuture<C, F> {
    /// Carries `carry` through every poll of `future`, each poll a task
    /// named `task` entered at `location`.
    #[inline]
    pub fn new(
        task: &'static str,
        location: &'static Location<'static>,
        carry: C,
        future: F,
    ) -> Self {
        Self {
            task,
            location,
            inner: ManuallyDrop::new(Travel {
                carry,
                future: Some(future),
            }),
        }
    }
}

impl<C: Carry, F: Future> Future for TaskFuture<C, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _task = TaskScope::enter_at(self.task, self.location);
        // SAFETY: `inner` is structurally pinned: never moved out (the
        // `Drop` below drops it in place), and no `Unpin` impl here;
        // `ManuallyDrop` is `repr(transparent)`, so pinning it pins the
        // `Travel` inside.
        unsafe { self.map_unchecked_mut(|this| &mut *this.inner) }.poll(cx)
    }
}

impl<C: Carry, F> Drop for TaskFuture<C, F> {
    fn drop(&mut self) {
        // Cancelled: the body is dropped inside the task, the task scope
        // entered before the keys' scopes (in `Travel`'s `Drop`) and left
        // after them, as in `poll`. A completed body was dropped in its
        // last poll: no task to enter again.
        let _task = self
            .inner
            .future
            .is_some()
            .then(|| TaskScope::enter_at(self.task, self.location));
        // SAFETY:
        // - `inner` is dropped exactly once: here, and nothing reads it after
        //   (this is `drop`; the field is `ManuallyDrop`, so the compiler
        //   drops nothing of it again).
        // - It is dropped in place, not moved, as its structural pinning
        //   requires (`Pin`'s drop guarantee).
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}

impl<C: Carry, F> fmt::Debug for TaskFuture<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("task", &self.task)
            .field("completed", &self.inner.future.is_none())
            .finish_non_exhaustive()
    }
}
