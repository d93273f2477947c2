//! The one place tl-core takes atomics, locks, globals and thread-locals from.
//!
//! A `--cfg loom` build swaps in loom's model-checked primitives here, and the
//! rest of the crate does not change: globals are declared with [`global!`]
//! (a plain `static`, or a `loom::lazy_static!` since loom's atomics cannot be
//! built in a `const`), thread-locals with [`local!`], and the constructors
//! that must be `const fn` for `static` handles are `const` only outside loom
//! ([`const_unless_loom!`]).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Loads an atomic pointer that only the calling thread ever writes: no
/// ordering is needed (loom: an unsynchronized load, so that these owner
/// reads add no interleavings to explore).
#[inline]
pub(crate) fn load_own<T>(atomic: &AtomicPtr<T>) -> *mut T {
    #[cfg(not(loom))]
    {
        atomic.load(Ordering::Relaxed)
    }
    #[cfg(loom)]
    // SAFETY: the caller's thread is the only writer, so no store can race
    // with this load.
    unsafe {
        atomic.unsync_load()
    }
}

// Not modelled by loom: set-once cells and the death-notice subscriber list.
pub(crate) use std::sync::{OnceLock, PoisonError, Weak};

/// Declares a process-wide `static`.
#[cfg(not(loom))]
macro_rules! global {
    ($(#[$meta:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;) => {
        $(#[$meta])* $vis static $name: $ty = $init;
    };
}
#[cfg(loom)]
macro_rules! global {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        loom::lazy_static! { $(#[$meta])* static ref $name: $ty = $init; }
    };
    ($(#[$meta:meta])* pub(crate) static $name:ident: $ty:ty = $init:expr;) => {
        loom::lazy_static! { $(#[$meta])* pub(crate) static ref $name: $ty = $init; }
    };
}
pub(crate) use global;

/// Declares a `const`-initialized thread-local.
#[cfg(not(loom))]
macro_rules! local {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = const $init:block;) => {
        std::thread_local! { $(#[$meta])* static $name: $ty = const $init; }
    };
}
#[cfg(loom)]
macro_rules! local {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = const $init:block;) => {
        loom::thread_local! { $(#[$meta])* static $name: $ty = $init; }
    };
}
pub(crate) use local;

/// Runs `f` with the calling thread's value of `key`, a `const`-initialized
/// thread-local of a type without a destructor (checked at compile time).
///
/// Such a thread-local is never destroyed, so its storage stays valid for
/// the whole life of the thread, and every access compiles to a direct TLS
/// access with no "initialized/destroyed" state check. Only the value's
/// address is taken inside `LocalKey::with` (a closure small enough to always
/// inline); `f` runs outside it. `destroyed` is not called outside loom.
#[cfg(not(loom))]
#[inline]
pub(crate) fn with_plain_local<T: 'static, R>(
    key: &'static std::thread::LocalKey<T>,
    f: impl FnOnce(&T) -> R,
    _destroyed: impl FnOnce() -> T,
) -> R {
    const { assert!(!core::mem::needs_drop::<T>()) };
    let value = key.with(core::ptr::from_ref);
    // SAFETY: `T` has no destructor, so the storage lives until the thread
    // ends; the reference stays on this thread and does not outlive this call.
    f(unsafe { &*value })
}

/// Loom destroys every thread-local at thread end, destructor or not, so a
/// late access gets the value `destroyed` makes, standing for what std's
/// build would hold by then. (Models end their threads with
/// `map::exit_thread`.)
#[cfg(loom)]
pub(crate) fn with_plain_local<T: 'static, R>(
    key: &'static loom::thread::LocalKey<T>,
    f: impl FnOnce(&T) -> R,
    destroyed: impl FnOnce() -> T,
) -> R {
    match key.try_with(core::ptr::from_ref) {
        // SAFETY: loom keeps a thread's thread-locals until the thread ends,
        // and the reference does not outlive this call.
        Ok(value) => f(unsafe { &*value }),
        Err(_) => f(&destroyed()),
    }
}

/// Declares a function that is `const` except under loom, whose atomics
/// have no `const` constructor.
#[cfg(not(loom))]
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$meta])* $vis const fn $($rest)* };
}
#[cfg(loom)]
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$meta])* $vis fn $($rest)* };
}
pub(crate) use const_unless_loom;

/// Locks `mutex`, ignoring poisoning.
///
/// No code in this crate panics while holding one of its locks (the critical
/// sections only move pointers and counters), so a poisoned lock can only come
/// from an allocation failure abort, never from a half-done update.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lock whose uncontended acquire is one atomic swap and whose release is
/// a plain store: half the read-modify-writes of `std::sync::Mutex`.
///
/// Used for each thread's table view, which the owner takes only to change
/// its table's structure and an auditor only to copy entry headers: critical
/// sections are short and never run user code. A waiter spins briefly, then
/// yields its time slice, so a holder that was preempted gets to finish.
///
/// Under loom it is loom's `Mutex`: loom's scheduler does not let a spinning
/// waiter make progress, and what the models check is the protocol the lock
/// protects, not the two lines of the lock.
#[cfg(not(loom))]
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the flag gives one thread at a time access to `value`, and moving
// `value` between threads that way needs `T: Send`.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for SpinLock<T> {}

#[cfg(not(loom))]
impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            value: core::cell::UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.swap(true, Ordering::Acquire) {
            self.lock_contended();
        }
        SpinGuard {
            lock: self,
            #[cfg(feature = "lock-stats")]
            acquired: hold_clock::Stamp::now(),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            // Test before test-and-set, so waiters spin on a shared cache line.
            while self.locked.load(Ordering::Relaxed) {
                if spins < 100 {
                    spins += 1;
                    core::hint::spin_loop();
                } else {
                    yield_now();
                }
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

/// Access to a [`SpinLock`]'s value; releases it on drop.
#[cfg(not(loom))]
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    #[cfg(feature = "lock-stats")]
    acquired: hold_clock::Stamp,
}

#[cfg(feature = "lock-stats")]
global! {
    /// The longest any view lock was held, in nanoseconds (`lock-stats`).
    pub(crate) static MAX_LOCK_HOLD_NS: AtomicU64 = AtomicU64::new(0);
}
#[cfg(feature = "lock-stats")]
global! {
    /// The same, in the holder's CPU time: time it was preempted excluded.
    pub(crate) static MAX_LOCK_HOLD_CPU_NS: AtomicU64 = AtomicU64::new(0);
}

/// Clocks for `lock-stats`: wall time and the calling thread's CPU time.
#[cfg(feature = "lock-stats")]
mod hold_clock {
    use std::time::{Duration, Instant};

    pub(crate) struct Stamp {
        wall: Instant,
        cpu: Option<Duration>,
    }

    fn thread_cpu() -> Option<Duration> {
        #[cfg(unix)]
        {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is a valid `timespec` to write to.
            let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0;
            let secs = u64::try_from(now.tv_sec).ok()?;
            let nanos = u32::try_from(now.tv_nsec).ok()?;
            ok.then(|| Duration::new(secs, nanos))
        }
        #[cfg(not(unix))]
        None
    }

    impl Stamp {
        pub(crate) fn now() -> Self {
            Self {
                wall: Instant::now(),
                cpu: thread_cpu(),
            }
        }

        /// Wall and CPU time since the stamp, in nanoseconds.
        pub(crate) fn elapsed_ns(&self) -> (u64, u64) {
            let wall = self.wall.elapsed();
            let cpu = match (self.cpu, thread_cpu()) {
                (Some(start), Some(end)) => end.saturating_sub(start),
                _ => wall,
            };
            let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            (ns(wall), ns(cpu))
        }
    }
}

#[cfg(not(loom))]
impl<T> core::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

#[cfg(not(loom))]
impl<T> core::ops::DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

#[cfg(not(loom))]
impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "lock-stats")]
        {
            let (wall, cpu) = self.acquired.elapsed_ns();
            MAX_LOCK_HOLD_NS.fetch_max(wall, Ordering::Relaxed);
            MAX_LOCK_HOLD_CPU_NS.fetch_max(cpu, Ordering::Relaxed);
        }
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(loom)]
pub(crate) struct SpinLock<T>(Mutex<T>);

#[cfg(loom)]
pub(crate) type SpinGuard<'a, T> = MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        lock(&self.0)
    }
}
