//! Heap blocks for key blocks and entries, recycled per thread.
//!
//! # Why
//! A key that lives for one request (created, bound, removed and dropped on
//! one thread) needs two heap blocks: its key block and the thread's entry.
//! With glibc's allocator their two allocations and two frees were a third of
//! the instructions of such a key's whole life (the `new_key_cycle` bench).
//! So each thread keeps the last [`CACHE_BLOCKS`] blocks it freed, of at most
//! [`MAX_BLOCK_BYTES`] each, and hands one back to its next allocation of the
//! same layout; the common cycle then calls the allocator not at all.
//!
//! # Bounds
//! A thread holds at most `CACHE_BLOCKS * MAX_BLOCK_BYTES` (2 KiB) of cached
//! blocks; a full cache gives its oldest block back to the allocator, and the
//! cache is emptied when its thread exits. A block freed after that (by a
//! later thread-local destructor of the exiting thread) goes straight to the
//! allocator. Where Rust's thread-local destructors do not run, the cache is
//! not emptied either: on the main thread at process exit, and (as for the
//! map, see `map`) on a thread whose first use of tl-core is inside a POSIX
//! thread-specific-data destructor. Under loom, whose thread-locals cannot run the cache's
//! destructor at the point std does, there is no cache.
//!
//! # Invariants
//! - A cached block was allocated by the global allocator with the layout
//!   cached beside it, holds no value, and nothing else points to it.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::alloc::{alloc, dealloc, handle_alloc_error};

/// The most blocks a thread keeps.
#[cfg(not(loom))]
const CACHE_BLOCKS: usize = 8;
/// Larger blocks are never cached, so the cache's memory stays small whatever
/// the values' types (a key block is 168 bytes on 64-bit targets, an entry
/// 48 plus its value).
const MAX_BLOCK_BYTES: usize = 256;

/// Memory for one `T`, uninitialized: a recycled block of `T`'s layout if
/// this thread has one, else a new one from the global allocator.
///
/// # Panics
/// At compile time if `T` is zero-sized. Aborts like `Box::new` if the
/// allocator fails.
#[inline]
pub(crate) fn allocate<T>() -> NonNull<T> {
    const { assert!(size_of::<T>() != 0) };
    let layout = Layout::new::<T>();
    if let Some(block) = recycled(layout) {
        return block.cast();
    }
    // SAFETY: `layout` has a non-zero size (asserted above).
    let block = unsafe { alloc(layout) };
    match NonNull::new(block) {
        Some(block) => block.cast(),
        None => handle_alloc_error(layout),
    }
}

/// Gives back a block from [`allocate`]: cached for this thread's next
/// allocation of the same layout, or returned to the allocator.
///
/// # Safety
/// `block` came from `allocate::<T>()` (on any thread), its value was
/// dropped or moved out, nothing will use it again, and it is freed once.
#[inline]
pub(crate) unsafe fn free<T>(block: NonNull<T>) {
    let layout = Layout::new::<T>();
    let block = block.cast::<u8>();
    let unwanted = if layout.size() <= MAX_BLOCK_BYTES {
        keep(layout, block)
    } else {
        Some((layout, block))
    };
    if let Some((layout, block)) = unwanted {
        // SAFETY: `block` itself (caller) or a block evicted from the cache
        // (module invariant): allocated with `layout`, used by no one.
        unsafe { dealloc(block.as_ptr(), layout) };
    }
}

/// A thread's cached blocks, oldest first.
#[cfg(not(loom))]
struct Cache(core::cell::RefCell<Vec<(Layout, NonNull<u8>)>>);

#[cfg(not(loom))]
impl Drop for Cache {
    fn drop(&mut self) {
        for (layout, block) in self.0.get_mut().drain(..) {
            // SAFETY: a cached block was allocated with the layout cached
            // beside it and is used by no one (module invariant).
            unsafe { dealloc(block.as_ptr(), layout) };
        }
    }
}

#[cfg(not(loom))]
crate::sync::local! {
    static CACHE: Cache = const { Cache(core::cell::RefCell::new(Vec::new())) };
}

/// A cached block of `layout`, taken out of the cache.
#[cfg(not(loom))]
#[inline]
fn recycled(layout: Layout) -> Option<NonNull<u8>> {
    CACHE
        .try_with(|cache| {
            let mut blocks = cache.0.borrow_mut();
            let i = blocks.iter().rposition(|(cached, _)| *cached == layout)?;
            Some(blocks.remove(i).1) // `remove`, not `swap_remove`: keeps the age order
        })
        .ok()
        .flatten()
}

/// Caches `block`. Returns the block to give back to the allocator instead:
/// the cache's oldest when it was full, or `block` itself when this thread's
/// cache is gone (the thread is exiting).
#[cfg(not(loom))]
#[inline]
fn keep(layout: Layout, block: NonNull<u8>) -> Option<(Layout, NonNull<u8>)> {
    CACHE
        .try_with(|cache| {
            let mut blocks = cache.0.borrow_mut();
            let oldest = (blocks.len() == CACHE_BLOCKS).then(|| blocks.remove(0));
            blocks.push((layout, block));
            oldest
        })
        .unwrap_or(Some((layout, block)))
}

#[cfg(loom)]
fn recycled(_layout: Layout) -> Option<NonNull<u8>> {
    None
}

#[cfg(loom)]
fn keep(layout: Layout, block: NonNull<u8>) -> Option<(Layout, NonNull<u8>)> {
    Some((layout, block))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn cached() -> Vec<(Layout, NonNull<u8>)> {
        CACHE.with(|cache| cache.0.borrow().clone())
    }

    fn give_back<T>(block: NonNull<T>) {
        // SAFETY: every block here comes from `allocate::<T>()`, holds no
        // value, and is given back once.
        unsafe { free(block) }
    }

    #[test]
    fn a_freed_block_is_handed_to_the_next_allocation_of_its_layout() {
        std::thread::spawn(|| {
            let first = allocate::<[u64; 3]>();
            give_back(first);
            assert_eq!(allocate::<[u64; 3]>(), first);
            assert!(cached().is_empty());
            give_back(first);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_block_of_another_layout_is_not_reused() {
        std::thread::spawn(|| {
            let small = allocate::<[u64; 2]>();
            give_back(small);
            let other = allocate::<[u32; 4]>(); // same size, other alignment
            assert_eq!(cached(), vec![(Layout::new::<[u64; 2]>(), small.cast())]);
            give_back(other);
            assert_eq!(cached().len(), 2);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_cache_gives_its_oldest_block_back_to_the_allocator() {
        std::thread::spawn(|| {
            let blocks: Vec<_> = (0..=CACHE_BLOCKS).map(|_| allocate::<u64>()).collect();
            for &block in &blocks {
                give_back(block);
            }
            let kept: Vec<_> = cached().into_iter().map(|(_, block)| block).collect();
            let newest: Vec<_> = blocks[1..].iter().map(|block| block.cast()).collect();
            assert_eq!(kept, newest);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn taking_a_block_keeps_the_others_in_age_order() {
        std::thread::spawn(|| {
            let a = allocate::<u64>();
            let b = allocate::<u32>();
            let c = allocate::<u16>();
            let d = allocate::<u8>();
            give_back(a);
            give_back(b);
            give_back(c);
            give_back(d);
            assert_eq!(allocate::<u32>(), b);
            let kept: Vec<_> = cached().into_iter().map(|(_, block)| block).collect();
            assert_eq!(kept, vec![a.cast(), c.cast(), d.cast()]);
            give_back(b);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn blocks_over_the_size_limit_go_straight_back_to_the_allocator() {
        std::thread::spawn(|| {
            give_back(allocate::<[u8; MAX_BLOCK_BYTES]>());
            assert_eq!(cached().len(), 1);
            give_back(allocate::<[u8; MAX_BLOCK_BYTES + 1]>());
            assert_eq!(cached().len(), 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_block_freed_on_another_thread_is_cached_there() {
        struct Moved(NonNull<u128>);
        // SAFETY: an unused block of plain memory, touched by one thread at a time.
        unsafe impl Send for Moved {}
        let moved = Moved(allocate::<u128>());
        std::thread::spawn(move || {
            let block = { moved }.0; // the whole `Moved` crosses, not its field
            give_back(block);
            assert_eq!(allocate::<u128>(), block);
            give_back(block);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_block_freed_after_its_threads_cache_is_gone_goes_to_the_allocator() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static CACHE_WAS_GONE: AtomicBool = AtomicBool::new(false);
        struct FreesLate(NonNull<u64>);
        impl Drop for FreesLate {
            fn drop(&mut self) {
                CACHE_WAS_GONE.store(CACHE.try_with(|_| ()).is_err(), Ordering::Relaxed);
                give_back(self.0); // leaked if it were kept (Miri checks)
            }
        }
        std::thread_local! {
            static LATE: core::cell::RefCell<Option<FreesLate>> = const { core::cell::RefCell::new(None) };
        }
        std::thread::spawn(|| {
            // Registered before the cache, so destroyed after it.
            LATE.with(|late| *late.borrow_mut() = Some(FreesLate(allocate::<u64>())));
            give_back(allocate::<u32>());
            assert_eq!(cached().len(), 1);
        })
        .join()
        .unwrap();
        assert!(CACHE_WAS_GONE.load(Ordering::Relaxed));
    }
}
