//! Death notices: a stream, like Java's `ReferenceQueue`, of keys that died.
//!
//! Java learns that a `ThreadLocal` died only when the garbage collector gets
//! around to it; here the handle's `drop` is the death, so every subscriber
//! gets a notice at that moment, with how many values other threads still
//! hold for the key. Those values are then reclaimed by their threads at their
//! next bind, unbind, scope or task start; an auditor that sees them still bound after a
//! grace period (an idle pooled thread) has found a stranded value.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::key::{KeyInfo, KeyShared};
use crate::registry::{self, ThreadInfo};
use crate::sync::{self, AtomicUsize, Mutex, Ordering, Weak, lock};

/// Notices kept per subscriber before the oldest are dropped (and counted).
const CAPACITY: usize = 65_536;

sync::global! {
    static SUBSCRIBERS: Mutex<Vec<Weak<Mutex<Queue>>>> = Mutex::new(Vec::new());
}
sync::global! {
    static SUBSCRIBER_COUNT: AtomicUsize = AtomicUsize::new(0);
}

#[derive(Default)]
struct Queue {
    notices: VecDeque<DeathNotice>,
    overflowed: u64,
    /// Only notices with `remote_entries > 0` (see [`subscribe_remote`]).
    remote_only: bool,
}

/// A key died.
#[derive(Clone, Debug)]
pub struct DeathNotice {
    /// The dead key (`key.alive` is false).
    pub key: KeyInfo,
    /// When its handle was dropped.
    pub died_at: Instant,
    /// How many other threads held an entry for it at that moment (bound or
    /// not); each reclaims it at its next bind, unbind, scope or task start.
    pub remote_entries: usize,
}

impl DeathNotice {
    /// The threads that still hold a value for the key now.
    pub fn holders(&self) -> Vec<ThreadInfo> {
        registry::snapshot_all()
            .into_iter()
            .filter(|t| t.stale().any(|e| e.key.id == self.key.id))
            .map(|t| t.thread)
            .collect()
    }
}

/// A subscription to death notices. Dropping it unsubscribes.
pub struct DeathNotices {
    queue: Arc<Mutex<Queue>>,
}

/// Subscribes to the notices of every key that dies from now on.
pub fn subscribe() -> DeathNotices {
    subscribe_with(false)
}

/// Subscribes to the notices of keys that die from now on while other
/// threads hold entries for them (`remote_entries > 0`): the only deaths
/// that can strand a value. Keys that die with no entry elsewhere (a burst
/// of short-lived keys used on one thread) take no room in the queue, so
/// they cannot push out, and lose, the notices that matter.
///
/// ```
/// use tl_core::{ThreadLocal, death};
///
/// let notices = death::subscribe_remote();
/// let key = ThreadLocal::new();
/// key.set(1);
/// drop(key); // its only value was this thread's: no notice
/// assert!(notices.try_recv().is_none());
/// ```
pub fn subscribe_remote() -> DeathNotices {
    subscribe_with(true)
}

fn subscribe_with(remote_only: bool) -> DeathNotices {
    let queue = Arc::new(Mutex::new(Queue {
        remote_only,
        ..Queue::default()
    }));
    let mut subscribers = lock(&SUBSCRIBERS);
    subscribers.retain(|s| s.strong_count() > 0);
    subscribers.push(Arc::downgrade(&queue));
    SUBSCRIBER_COUNT.store(subscribers.len(), Ordering::Release);
    DeathNotices { queue }
}

impl DeathNotices {
    /// The oldest pending notice, if any.
    pub fn try_recv(&self) -> Option<DeathNotice> {
        lock(&self.queue).notices.pop_front()
    }

    /// Every pending notice, oldest first.
    pub fn drain(&self) -> Vec<DeathNotice> {
        lock(&self.queue).notices.drain(..).collect()
    }

    /// Notices lost because more than 65,536 were pending.
    pub fn overflowed(&self) -> u64 {
        lock(&self.queue).overflowed
    }
}

impl Drop for DeathNotices {
    fn drop(&mut self) {
        let mut subscribers = lock(&SUBSCRIBERS);
        subscribers.retain(|s| {
            s.strong_count() > 0 && !core::ptr::eq(s.as_ptr(), Arc::as_ptr(&self.queue))
        });
        SUBSCRIBER_COUNT.store(subscribers.len(), Ordering::Release);
    }
}

impl core::fmt::Debug for DeathNotices {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeathNotices").finish_non_exhaustive()
    }
}

/// Sends a notice for `key` to every subscriber; free when there are none.
#[inline]
pub(crate) fn publish(key: &KeyShared, remote_entries: usize) {
    if SUBSCRIBER_COUNT.load(Ordering::Acquire) != 0 {
        publish_to_subscribers(key, remote_entries);
    }
}

#[cold]
#[inline(never)]
fn publish_to_subscribers(key: &KeyShared, remote_entries: usize) {
    let notice = DeathNotice {
        key: key.info(),
        died_at: Instant::now(),
        remote_entries,
    };
    for subscriber in lock(&SUBSCRIBERS).iter().filter_map(Weak::upgrade) {
        let mut queue = lock(&subscriber);
        if queue.remote_only && remote_entries == 0 {
            continue;
        }
        if queue.notices.len() == CAPACITY {
            queue.notices.pop_front();
            queue.overflowed += 1;
        }
        queue.notices.push_back(notice.clone());
    }
}
