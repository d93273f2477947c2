//! Death notices: one per key death and subscriber, with the count of other
//! threads' entries (`remote_entries`) and the threads still holding values.

mod common;

use std::sync::{Arc, Barrier, PoisonError, RwLock, RwLockReadGuard};
use std::time::Instant;

use common::{Worker, on_new_thread};
use tl_core::ThreadLocal;
use tl_core::death::{self, DeathNotice, DeathNotices};

/// Held shared by every test that needs its subscription's queue not to
/// overflow, and exclusively by the test that overflows every plain queue
/// with a burst of deaths (it ran beside the others under valgrind's slow
/// schedule and dropped their notices).
static QUEUE_ROOM: RwLock<()> = RwLock::new(());

fn queue_room() -> RwLockReadGuard<'static, ()> {
    QUEUE_ROOM.read().unwrap_or_else(PoisonError::into_inner)
}

/// The notices for key `id` (other tests kill keys concurrently).
fn notices_for(sub: &DeathNotices, id: u64) -> Vec<DeathNotice> {
    sub.drain().into_iter().filter(|n| n.key.id == id).collect()
}

fn one_notice(sub: &DeathNotices, id: u64) -> DeathNotice {
    let mut notices = notices_for(sub, id);
    assert_eq!(notices.len(), 1, "{notices:?}");
    notices.pop().unwrap()
}

#[test]
fn notice_counts_remote_entries() {
    let _room = queue_room();
    let sub = death::subscribe();
    let tl = Arc::new(ThreadLocal::new().named("death::counted"));
    let workers: Vec<Worker> = (0..2).map(|_| Worker::spawn()).collect();
    for (i, w) in workers.iter().enumerate() {
        let tl = tl.clone();
        w.run(move || drop(tl.set(format!("worker {i}"))));
    }
    tl.set("main".to_owned());
    let id = tl.id();
    let before = Instant::now();
    drop(Arc::into_inner(tl).unwrap());
    let notice = one_notice(&sub, id);
    assert_eq!(notice.remote_entries, 2, "the two workers, not this thread");
    assert_eq!(notice.key.name, Some("death::counted"));
    assert!(!notice.key.alive);
    assert!(notice.died_at >= before && notice.died_at <= Instant::now());

    let mut holders: Vec<_> = notice.holders().into_iter().map(|t| t.std_id).collect();
    let mut expected: Vec<_> = workers.iter().map(Worker::thread_id).collect();
    holders.sort_by_key(|id| format!("{id:?}"));
    expected.sort_by_key(|id| format!("{id:?}"));
    assert_eq!(holders, expected, "idle workers still hold their values");

    // One worker's next access reclaims its value.
    static OTHER: ThreadLocal<u8> = ThreadLocal::new();
    workers[0].run(|| OTHER.set(1));
    let holders: Vec<_> = notice.holders().into_iter().map(|t| t.std_id).collect();
    assert_eq!(holders, [workers[1].thread_id()]);
    drop(workers);
    assert!(notice.holders().is_empty(), "exited threads hold nothing");
}

/// An unbound entry (set, then removed) still counts as a remote entry, but
/// its thread is not a holder.
#[test]
fn remote_entries_counts_unbound_entries() {
    let _room = queue_room();
    let sub = death::subscribe();
    let tl = Arc::new(ThreadLocal::<u32>::new());
    let worker = Worker::spawn();
    {
        let tl = tl.clone();
        worker.run(move || {
            tl.set(1);
            tl.remove();
        });
    }
    let id = tl.id();
    drop(tl);
    let notice = one_notice(&sub, id);
    assert_eq!(notice.remote_entries, 1);
    assert!(notice.holders().is_empty());
}

#[test]
fn no_remote_entries() {
    let _room = queue_room();
    let sub = death::subscribe();
    let tl = ThreadLocal::new();
    tl.set(1u8);
    let id = tl.id();
    drop(tl);
    assert_eq!(one_notice(&sub, id).remote_entries, 0);

    // A key that never had a value anywhere.
    let tl = ThreadLocal::<u8>::new();
    let id = tl.id();
    drop(tl);
    assert_eq!(one_notice(&sub, id).remote_entries, 0);

    // A key dropped on another thread than its only holder's: one remote.
    let tl = ThreadLocal::new();
    tl.set(1u8);
    let id = tl.id();
    on_new_thread(move || drop(tl));
    assert_eq!(one_notice(&sub, id).remote_entries, 1);
    assert!(!ThreadLocal::<u8>::new().is_set()); // an access; reclaims ours
}

#[test]
fn every_subscriber_gets_each_notice_once() {
    let _room = queue_room();
    let a = death::subscribe();
    let b = death::subscribe();
    let tl = ThreadLocal::<u8>::new();
    let id = tl.id();
    drop(tl);
    assert_eq!(notices_for(&a, id).len(), 1);
    assert_eq!(notices_for(&b, id).len(), 1);
    assert!(notices_for(&a, id).is_empty(), "drained");
    assert_eq!(a.overflowed(), 0);
    assert!(format!("{a:?}").contains("DeathNotices"));
}

#[test]
fn subscription_window() {
    let _room = queue_room();
    let early = ThreadLocal::<u8>::new();
    let early_id = early.id();
    drop(early);
    let sub = death::subscribe();
    assert!(
        notices_for(&sub, early_id).is_empty(),
        "no notices of earlier deaths"
    );
    let tl = ThreadLocal::<u8>::new();
    let id = tl.id();
    drop(tl);
    let mut found = None;
    while let Some(n) = sub.try_recv() {
        if n.key.id == id {
            found = Some(n);
        }
    }
    assert!(found.is_some(), "try_recv yields the notice");
    drop(sub);
    // Deaths between two subscriptions reach neither.
    let later = ThreadLocal::<u8>::new();
    let later_id = later.id();
    drop(later);
    let sub = death::subscribe();
    assert!(notices_for(&sub, later_id).is_empty());
}

/// A captured but not yet installed `Inheritance` holds no entry on any
/// thread, so it must not count towards `remote_entries` ("how many other
/// threads held an entry for it").
#[test]
fn remote_entries_ignores_pending_inheritance() {
    let _room = queue_room();
    let sub = death::subscribe();
    let tl = ThreadLocal::new().inheritable();
    tl.set(1u32);
    let pending = tl_core::inherit::capture();
    assert_eq!(pending.len(), 1);
    let id = tl.id();
    drop(tl);
    let notice = one_notice(&sub, id);
    drop(pending);
    assert_eq!(notice.remote_entries, 0, "no other thread holds an entry");
}

/// A key killed during thread exit by a value's `Drop`, while the exiting
/// thread still holds an entry for it (not yet dropped by the teardown):
/// that entry is the dropping thread's own, not another thread's.
#[test]
fn remote_entries_ignores_own_entry_during_exit() {
    let _room = queue_room();
    let sub = death::subscribe();
    let victims = 16;
    let (ids, killer) = on_new_thread(move || {
        // Created first, so that victims' entries follow the killer's in the
        // table (slot order is hash order, so some do).
        let killer = ThreadLocal::new();
        let keys: Vec<ThreadLocal<u32>> = (0..victims).map(|_| ThreadLocal::new()).collect();
        let ids: Vec<u64> = keys.iter().map(ThreadLocal::id).collect();
        for k in &keys {
            k.set(1);
        }
        // The killer's value drops every victim handle during teardown.
        killer.set(common::OnDrop::new(move || drop(keys)));
        (ids, killer)
    });
    drop(killer);
    let notices = sub.drain();
    let counts: Vec<(u64, usize)> = ids
        .iter()
        .map(|&id| {
            let n = notices.iter().find(|n| n.key.id == id).expect("a notice");
            (id, n.remote_entries)
        })
        .collect();
    assert!(
        counts.iter().all(|&(_, remote)| remote == 0),
        "no other thread had an entry: (key, remote_entries) {counts:?}"
    );
}

/// `subscribe_remote` queues only deaths that can strand a value, so a
/// burst of short-lived local keys cannot overflow it.
#[test]
fn remote_subscribers_get_only_deaths_with_remote_entries() {
    let _exclusive = QUEUE_ROOM.write().unwrap_or_else(PoisonError::into_inner);
    let remote = death::subscribe_remote();
    let all = death::subscribe();
    let burst = if cfg!(miri) { 8 } else { 70_000 };
    let mut local_ids = Vec::new();
    for i in 0..burst {
        let key = ThreadLocal::new();
        key.set(i);
        local_ids.push(key.id());
    }
    assert!(
        all.overflowed() > 0 || cfg!(miri),
        "the plain queue overflows"
    );
    let tl = Arc::new(ThreadLocal::new().named("death::remote"));
    let worker = Worker::spawn();
    let t = tl.clone();
    worker.run(move || {
        t.set(7_u32);
    });
    let id = tl.id();
    drop(Arc::into_inner(tl).unwrap());
    assert_eq!(remote.overflowed(), 0);
    let notices = remote.drain();
    assert!(notices.iter().all(|n| n.remote_entries > 0), "{notices:?}");
    assert!(notices.iter().all(|n| !local_ids.contains(&n.key.id)));
    assert_eq!(notices.iter().filter(|n| n.key.id == id).count(), 1);
    drop(worker);
}

/// Threads that start at once and bind a new key's first values each count
/// as one remote entry, whichever of them created the key: the reference a
/// new key keeps for its creator's first entry is neither lost nor counted
/// twice. (Two threads creating the key at the very same moment is rare
/// here; `lazykey`'s unit tests cover the losing key directly, under Miri.)
#[test]
fn remote_entries_counts_threads_that_raced_to_create_the_key() {
    const THREADS: usize = 4;
    let _room = queue_room();
    let sub = death::subscribe();
    // Fewer rounds under Miri, which runs threads slowly.
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for round in 0..rounds {
        let tl = Arc::new(ThreadLocal::<usize>::new());
        let (start, released, noticed) = (
            Barrier::new(THREADS),
            Barrier::new(THREADS + 1),
            Barrier::new(THREADS + 1),
        );
        std::thread::scope(|s| {
            for i in 0..THREADS {
                let (tl, start, released, noticed) = (tl.clone(), &start, &released, &noticed);
                s.spawn(move || {
                    start.wait();
                    tl.set(i);
                    drop(tl);
                    released.wait();
                    noticed.wait();
                });
            }
            released.wait();
            let id = tl.id();
            drop(Arc::into_inner(tl).unwrap());
            let notice = one_notice(&sub, id);
            assert_eq!(notice.remote_entries, THREADS, "round {round}");
            assert_eq!(notice.holders().len(), THREADS, "round {round}");
            noticed.wait();
        });
    }
}
