//! The attribute adds no allocation: once keys and this thread's map exist,
//! a guarded handler allocates exactly what its body allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tl_core::ThreadLocal;
use tl_core::{ThreadLocalScoped, thread_local_scoped};

/// Counts this thread's allocations (other test threads do not interfere).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; the counter is a
// const-initialized `Cell`, so counting cannot allocate or recurse.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_of(f: impl Fn()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..100 {
        f();
    }
    ALLOCATIONS.with(Cell::get) - before
}

static A: ThreadLocal<u64> = ThreadLocal::new();
static B: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(A, B)]
fn guarded(x: u64) {
    A.set(x);
    B.set(x + 1);
}

fn hand_written(x: u64) {
    let _task = tl_core::checkpoint::TaskScope::enter("hand_written");
    let _a = A.guard();
    let _b = B.guard();
    A.set(x);
    B.set(x + 1);
}

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped]
    a: ThreadLocal<u64>,
    #[thread_local_scoped]
    b: ThreadLocal<u64>,
}

impl Service {
    #[thread_local_scoped]
    fn handle(&self, x: u64) {
        self.a.set(x);
        self.b.set(x + 1);
    }

    fn handle_by_hand(&self, x: u64) {
        let _task = tl_core::checkpoint::TaskScope::enter("handle_by_hand");
        let _a = self.a.guard();
        let _b = self.b.guard();
        self.a.set(x);
        self.b.set(x + 1);
    }
}

#[test]
fn guarded_handlers_allocate_nothing_more_than_their_body() {
    let service = Service {
        a: ThreadLocal::new(),
        b: ThreadLocal::new(),
    };
    // First use creates the keys, the labels and this thread's entries.
    guarded(0);
    hand_written(0);
    service.handle(0);

    assert_eq!(
        allocations_of(|| guarded(1)),
        allocations_of(|| hand_written(1))
    );
    assert_eq!(allocations_of(|| guarded(1)), 0);
    assert_eq!(allocations_of(|| service.handle(1)), 0);

    // Nested in a scope, the guards keep the outer value while the body
    // rebinds it (tl-core's `Guard` boxes it): the same cost either way.
    let _outer = A.scope(99);
    let _outer_field = service.a.scope(99);
    guarded(2);
    hand_written(2);
    service.handle(2);
    service.handle_by_hand(2);
    assert_eq!(
        allocations_of(|| guarded(3)),
        allocations_of(|| hand_written(3))
    );
    assert_eq!(
        allocations_of(|| service.handle(3)),
        allocations_of(|| service.handle_by_hand(3))
    );
    assert_eq!(A.get(), Some(99));
    assert_eq!(service.a.get(), Some(99));
}

/// Pending once, then ready (wakes nothing: polled by hand).
struct Pending(bool);

impl std::future::Future for Pending {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            std::task::Poll::Pending
        }
    }
}

#[thread_local_scoped(A, B)]
async fn guarded_async(x: u64) -> u64 {
    A.set(x);
    B.set(x + 1);
    for _ in 0..10 {
        Pending(false).await;
    }
    A.get().unwrap_or(0) + B.get().unwrap_or(0)
}

async fn reads_b() -> u64 {
    for _ in 0..10 {
        Pending(false).await;
    }
    B.get().unwrap_or(0)
}

/// Polls `future` once, then counts the allocations of the polls to its end.
fn allocations_after_first_poll<F: std::future::Future>(future: F) -> usize {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    let before = ALLOCATIONS.with(Cell::get);
    while future.as_mut().poll(&mut cx).is_pending() {}
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn polls_of_async_handlers_and_scoped_futures_allocate_nothing() {
    // On a thread with nothing bound.
    assert_eq!(allocations_after_first_poll(guarded_async(1)), 0);
    assert_eq!(
        allocations_after_first_poll(B.scope_future(5, reads_b())),
        0
    );
    // On a thread that has values of its own bound: they are moved aside for
    // each poll and put back after it, without a box.
    let _a = A.scope(90);
    let _b = B.scope(91);
    assert_eq!(allocations_after_first_poll(guarded_async(1)), 0);
    assert_eq!(
        allocations_after_first_poll(B.scope_future(5, reads_b())),
        0
    );
    assert_eq!((A.get(), B.get()), (Some(90), Some(91)));
}
