//! Memory use, measured with a counting global allocator: many short-lived
//! keys do not grow memory (the JDK's `MemoryLeak` test), and the bytes each
//! bound entry costs.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use common::{on_new_thread, scaled, serial};
use tl_core::ThreadLocal;

/// `System`, counting live bytes for the process and for each thread.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

std::thread_local! {
    /// Bytes allocated minus bytes freed by this thread. `const` and without
    /// a destructor, so using it never allocates and works during thread exit.
    static THREAD_LIVE: Cell<isize> = const { Cell::new(0) };
}

fn account(bytes: isize) {
    LIVE.fetch_add(bytes, Ordering::Relaxed);
    let _ = THREAD_LIVE.try_with(|live| live.set(live.get() + bytes));
}

fn signed(size: usize) -> isize {
    isize::try_from(size).expect("allocation size fits isize")
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counting has no effect on
// the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from our caller, who upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            account(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            account(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from our caller: `ptr` came from this allocator
        // (hence from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        account(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from our caller, as for `dealloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            account(signed(new_size) - signed(layout.size()));
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live bytes allocated by the calling thread (and not freed).
fn thread_live() -> isize {
    THREAD_LIVE.with(Cell::get)
}

/// The tests measure, so they do not run at the same time.
static MEASURING: Mutex<()> = Mutex::new(());

/// JDK `MemoryLeak`: create a key, bind a value, drop the key, a million
/// times on one thread. Live memory stays bounded: neither the dead entries,
/// nor their keys, nor table slots accumulate.
#[test]
fn many_short_lived_keys_do_not_grow_memory() {
    let _serial = serial(&MEASURING);
    let cycles = scaled(1_000_000, 1_000);
    let warmup = scaled(10_000, 100);
    let (after_warmup, after, peak) = on_new_thread(move || {
        let cycle = |i: usize| {
            let tl = ThreadLocal::new();
            tl.set(Box::new(i)); // a heap value, like the JDK's `new Object()`
            drop(tl.set(Box::new(i + 1)));
            drop(tl);
        };
        for i in 0..warmup {
            cycle(i);
        }
        let after_warmup = thread_live();
        let mut peak = after_warmup;
        for i in 0..cycles {
            cycle(i);
            if i % 1024 == 0 {
                peak = peak.max(thread_live());
            }
        }
        (after_warmup, thread_live(), peak)
    });
    let growth = after - after_warmup;
    println!(
        "memory: {cycles} create/set/drop cycles: live bytes {after_warmup} after warm-up, \
         {after} after ({growth:+}), peak {peak}"
    );
    assert!(
        growth <= 256,
        "live bytes grew by {growth} over {cycles} cycles"
    );
    assert!(peak - after_warmup <= 4096, "peak {peak} vs {after_warmup}");
}

/// Keys kept alive while their values come and go on one thread: the
/// set/remove cycle allocates nothing once the entry exists.
#[test]
fn set_remove_cycle_does_not_allocate() {
    let _serial = serial(&MEASURING);
    let cycles = scaled(100_000, 200);
    let growth = on_new_thread(move || {
        let keys: Vec<ThreadLocal<u64>> = (0..8).map(|_| ThreadLocal::new()).collect();
        for k in &keys {
            k.set(0);
            k.remove();
        }
        let before = thread_live();
        for i in 0..cycles {
            let k = &keys[i % keys.len()];
            k.set(i as u64);
            assert_eq!(k.get(), Some(i as u64));
            k.remove();
        }
        thread_live() - before
    });
    assert_eq!(growth, 0);
}

/// Bytes per bound entry: keys are created up front (their blocks are not
/// counted), then bound on a fresh thread, whose allocation delta is the
/// per-thread cost: entries plus table slots plus the thread's registration.
#[test]
fn bytes_per_entry() {
    let _serial = serial(&MEASURING);
    // 10,000 (or, under Miri, 170) keys hold slots up to about that number
    // (other tests' keys may hold some), so the table has 16,384 (256) slots:
    // a typical load, neither just grown nor nearly full.
    let n = scaled(10_000, 170);
    let keys: Vec<ThreadLocal<u64>> = (0..n).map(|_| ThreadLocal::new()).collect();
    for key in &keys {
        key.id(); // creates the key block now, on this thread
    }
    let keys = std::sync::Arc::new(keys);
    let (delta, global_delta) = {
        let keys = keys.clone();
        on_new_thread(move || {
            let global_before = LIVE.load(Ordering::SeqCst);
            let before = thread_live();
            for (i, key) in keys.iter().enumerate() {
                key.set(i as u64);
            }
            let delta = thread_live() - before;
            let global_delta = LIVE.load(Ordering::SeqCst) - global_before;
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(key.get(), Some(i as u64));
            }
            (delta, global_delta)
        })
    };
    let n_signed = signed(n);
    let per_entry = delta / n_signed;
    let overhead = per_entry - signed(size_of::<u64>());
    println!(
        "memory: {n} ThreadLocal<u64> entries on a fresh thread: {delta} bytes \
         ({per_entry} per entry, {overhead} beyond the value; process-wide delta {global_delta})"
    );
    assert!(
        overhead <= 64,
        "{overhead} bytes per entry beyond the value"
    );
}
