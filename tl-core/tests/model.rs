//! Property test: random operation sequences over several keys and threads,
//! with key deaths, key re-creation and thread exits, checked against a
//! `HashMap` model per thread, and with every value instance tracked so
//! that each is proven dropped exactly once (and never while bound).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{Tracked, Tracker, Worker};
use proptest::prelude::*;
use proptest::test_runner::Config;
use tl_core::ThreadLocal;

const THREADS: usize = if cfg!(miri) { 2 } else { 3 };
const KEYS: usize = if cfg!(miri) { 3 } else { 4 };
const MAX_OPS: usize = if cfg!(miri) { 25 } else { 60 };

#[derive(Clone, Debug)]
enum Op {
    Set {
        thread: usize,
        key: usize,
        val: u64,
    },
    Get {
        thread: usize,
        key: usize,
    },
    With {
        thread: usize,
        key: usize,
    },
    WithMut {
        thread: usize,
        key: usize,
        val: u64,
    },
    Remove {
        thread: usize,
        key: usize,
    },
    IsSet {
        thread: usize,
        key: usize,
    },
    /// `scope(val)`, checked inside, then dropped.
    Scoped {
        thread: usize,
        key: usize,
        val: u64,
    },
    /// `guard()`, then `remove` (if `remove_first`) and `set(val)`, then
    /// the guard is dropped.
    Guarded {
        thread: usize,
        key: usize,
        val: u64,
        remove_first: bool,
    },
    /// Drops the key's handle on a worker, or on the controller (`None`).
    DropKey {
        on: Option<usize>,
        key: usize,
    },
    /// Creates a key in an empty slot, with an initial value or not, and
    /// with its id created up front or lazily.
    CreateKey {
        key: usize,
        init: Option<u64>,
        eager: bool,
    },
    ExitThread {
        thread: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..THREADS;
    let k = 0..KEYS;
    let v = 0..1000u64;
    prop_oneof![
        4 => (t.clone(), k.clone(), v.clone()).prop_map(|(thread, key, val)| Op::Set { thread, key, val }),
        2 => (t.clone(), k.clone()).prop_map(|(thread, key)| Op::Get { thread, key }),
        1 => (t.clone(), k.clone()).prop_map(|(thread, key)| Op::With { thread, key }),
        1 => (t.clone(), k.clone(), v.clone()).prop_map(|(thread, key, val)| Op::WithMut { thread, key, val }),
        2 => (t.clone(), k.clone()).prop_map(|(thread, key)| Op::Remove { thread, key }),
        1 => (t.clone(), k.clone()).prop_map(|(thread, key)| Op::IsSet { thread, key }),
        1 => (t.clone(), k.clone(), v.clone()).prop_map(|(thread, key, val)| Op::Scoped { thread, key, val }),
        1 => (t.clone(), k.clone(), v.clone(), any::<bool>())
            .prop_map(|(thread, key, val, remove_first)| Op::Guarded { thread, key, val, remove_first }),
        1 => (proptest::option::of(t.clone()), k.clone()).prop_map(|(on, key)| Op::DropKey { on, key }),
        2 => (k, proptest::option::of(v), any::<bool>())
            .prop_map(|(key, init, eager)| Op::CreateKey { key, init, eager }),
        1 => t.prop_map(|thread| Op::ExitThread { thread }),
    ]
}

/// A live key: its handle (the controller holds the only long-lived
/// reference), its generation (model keys never repeat) and its initializer.
struct Slot {
    handle: Arc<ThreadLocal<Tracked>>,
    generation: u64,
    init: Option<u64>,
    /// The key exists (`id` was created): every write to it (and a read
    /// that runs its initializer) reclaims dead keys' values on the
    /// accessing thread.
    created: bool,
}

/// What one thread holds, according to the model.
#[derive(Default)]
struct ThreadModel {
    /// Key generation -> (instance id, value).
    bound: HashMap<u64, (u64, u64)>,
    /// Instances of dead keys not yet reclaimed by this thread.
    pending: HashSet<u64>,
}

struct Harness {
    tracker: Tracker,
    workers: Vec<Worker>,
    models: Vec<ThreadModel>,
    slots: Vec<Option<Slot>>,
    next_generation: u64,
}

type Seen = Option<(u64, u64)>;

fn seen(v: Option<&Tracked>) -> Seen {
    v.map(|v| (v.id, v.val))
}

impl Harness {
    fn new() -> Self {
        let mut h = Self {
            tracker: Tracker::new(),
            workers: (0..THREADS).map(|_| Worker::spawn()).collect(),
            models: (0..THREADS).map(|_| ThreadModel::default()).collect(),
            slots: (0..KEYS).map(|_| None).collect(),
            next_generation: 0,
        };
        for key in 0..KEYS {
            h.create(key, None, key % 2 == 0);
        }
        h
    }

    fn create(&mut self, key: usize, init: Option<u64>, eager: bool) {
        if self.slots[key].is_some() {
            return;
        }
        let handle = match init {
            Some(val) => {
                let tracker = self.tracker.clone();
                ThreadLocal::with_initial_fn(move || tracker.make(val))
            }
            None => ThreadLocal::new(),
        };
        if eager {
            handle.id();
        }
        self.slots[key] = Some(Slot {
            handle: Arc::new(handle),
            generation: self.next_generation,
            init,
            created: eager,
        });
        self.next_generation += 1;
    }

    /// Runs `f` with the key's handle on worker `thread`, then applies the
    /// sweep rule: a write to a created key (`sweeps`: a set, a remove, a
    /// scope, a guard, or a read that runs the initializer) reclaims dead
    /// keys' values; a plain read does not.
    fn on<R: Send + 'static>(
        &mut self,
        thread: usize,
        key: usize,
        creates: bool,
        sweeps: bool,
        f: impl FnOnce(&ThreadLocal<Tracked>) -> R + Send + 'static,
    ) -> Option<(R, u64, Option<u64>)> {
        let slot = self.slots[key].as_mut()?;
        let handle = slot.handle.clone();
        let r = self.workers[thread].run(move || f(&handle));
        slot.created |= creates;
        if slot.created && sweeps {
            self.models[thread].pending.clear();
        }
        Some((r, slot.generation, slot.init))
    }

    /// Whether the model has a value bound for `key` on `thread`.
    fn is_bound(&self, thread: usize, key: usize) -> bool {
        self.slots[key]
            .as_ref()
            .is_some_and(|slot| self.models[thread].bound.contains_key(&slot.generation))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Set { thread, key, val } => {
                let value = self.tracker.make(val);
                let new_id = value.id;
                let Some((old, generation, _)) = self.on(thread, key, true, true, move |tl| {
                    seen(tl.set(value).as_ref())
                }) else {
                    return;
                };
                let expected = self.models[thread].bound.insert(generation, (new_id, val));
                assert_eq!(old, expected, "set returned the previous value");
            }
            Op::Get { thread, key } => {
                let creates = self.init_of(key).is_some();
                let sweeps = creates && !self.is_bound(thread, key);
                let Some(((got, bound), generation, init)) =
                    self.on(thread, key, creates, sweeps, |tl| {
                        (tl.get().map(|v| v.val), tl.with(seen))
                    })
                else {
                    return;
                };
                self.check_read(thread, generation, init, got.map(|v| (0, v)), bound);
            }
            Op::With { thread, key } => {
                let creates = self.init_of(key).is_some();
                let sweeps = creates && !self.is_bound(thread, key);
                let Some((bound, generation, init)) =
                    self.on(thread, key, creates, sweeps, |tl| tl.with(seen))
                else {
                    return;
                };
                self.check_read(thread, generation, init, bound, bound);
            }
            Op::WithMut { thread, key, val } => {
                let creates = self.init_of(key).is_some();
                let sweeps = creates && !self.is_bound(thread, key);
                let Some((bound, generation, init)) =
                    self.on(thread, key, creates, sweeps, move |tl| {
                        tl.with_mut(|v| {
                            v.map(|v| {
                                let before = (v.id, v.val);
                                v.val = val;
                                before
                            })
                        })
                    })
                else {
                    return;
                };
                self.check_read(thread, generation, init, bound, bound);
                if let Some(entry) = self.models[thread].bound.get_mut(&generation) {
                    entry.1 = val;
                }
            }
            Op::Remove { thread, key } => {
                let created = self.slots[key].as_ref().is_some_and(|s| s.created);
                let Some((removed, generation, _)) = self.on(thread, key, created, created, |tl| {
                    seen(tl.remove().as_ref())
                }) else {
                    return;
                };
                assert_eq!(removed, self.models[thread].bound.remove(&generation));
            }
            Op::IsSet { thread, key } => {
                let created = self.slots[key].as_ref().is_some_and(|s| s.created);
                let Some((is_set, generation, _)) =
                    self.on(thread, key, created, false, |tl| tl.is_set())
                else {
                    return;
                };
                assert_eq!(is_set, self.models[thread].bound.contains_key(&generation));
            }
            Op::Scoped { thread, key, val } => {
                let value = self.tracker.make(val);
                let new_id = value.id;
                let Some(((inside, after), generation, _)) =
                    self.on(thread, key, true, true, move |tl| {
                        let scope = tl.scope(value);
                        let inside = tl.with(seen);
                        drop(scope);
                        // `with` would run the initializer on an unbound key.
                        let after = if tl.is_set() { tl.with(seen) } else { None };
                        (inside, after)
                    })
                else {
                    return;
                };
                assert_eq!(inside, Some((new_id, val)));
                assert_eq!(
                    after,
                    self.models[thread].bound.get(&generation).copied(),
                    "restored"
                );
            }
            Op::Guarded {
                thread,
                key,
                val,
                remove_first,
            } => {
                let value = self.tracker.make(val);
                let Some(((removed, replaced, after), generation, _)) =
                    self.on(thread, key, true, true, move |tl| {
                        let guard = tl.guard();
                        let removed = if remove_first {
                            seen(tl.remove().as_ref())
                        } else {
                            None
                        };
                        let replaced = seen(tl.set(value).as_ref());
                        drop(guard);
                        let after = if tl.is_set() { tl.with(seen) } else { None };
                        (removed, replaced, after)
                    })
                else {
                    return;
                };
                assert_eq!(removed, None, "an outer value is sheltered, not removed");
                assert_eq!(replaced, None, "an outer value is sheltered, not returned");
                assert_eq!(
                    after,
                    self.models[thread].bound.get(&generation).copied(),
                    "restored"
                );
            }
            Op::DropKey { on, key } => {
                let Some(slot) = self.slots[key].take() else {
                    return;
                };
                assert_eq!(Arc::strong_count(&slot.handle), 1);
                let generation = slot.generation;
                match on {
                    Some(thread) => {
                        let handle = slot.handle;
                        self.workers[thread].run(move || drop(handle));
                    }
                    None => drop(slot.handle),
                }
                for (t, model) in self.models.iter_mut().enumerate() {
                    if let Some((id, _)) = model.bound.remove(&generation) {
                        if on == Some(t) {
                            assert_eq!(
                                self.tracker.drops_of(id),
                                1,
                                "the dropping thread's value goes at once"
                            );
                        } else {
                            model.pending.insert(id);
                        }
                    }
                }
            }
            Op::CreateKey { key, init, eager } => self.create(key, init, eager),
            Op::ExitThread { thread } => {
                std::mem::replace(&mut self.workers[thread], Worker::spawn()).join();
                self.models[thread] = ThreadModel::default();
            }
        }
    }

    fn init_of(&self, key: usize) -> Option<u64> {
        self.slots[key].as_ref().and_then(|s| s.init)
    }

    /// Checks a read (`got`: what the read returned; `bound`: the instance
    /// bound after it) and records an initial value it bound.
    fn check_read(
        &mut self,
        thread: usize,
        generation: u64,
        init: Option<u64>,
        got: Seen,
        bound: Seen,
    ) {
        let model = &mut self.models[thread];
        match (model.bound.get(&generation).copied(), init) {
            (Some(expected), _) => {
                assert_eq!(bound, Some(expected), "reads see the bound instance");
                assert_eq!(got.map(|g| g.1), Some(expected.1));
            }
            (None, Some(init_val)) => {
                let (id, val) = bound.expect("the initializer bound a value");
                assert_eq!(val, init_val);
                assert_eq!(got.map(|g| g.1), Some(init_val));
                model.bound.insert(generation, (id, val));
            }
            (None, None) => {
                assert_eq!(bound, None);
                assert_eq!(got, None);
            }
        }
    }

    /// Every instance is bound (never dropped), pending (dropped at most
    /// once), or gone (dropped exactly once).
    fn check_drops(&self) {
        let bound: HashSet<u64> = self
            .models
            .iter()
            .flat_map(|m| m.bound.values().map(|&(id, _)| id))
            .collect();
        let pending: HashSet<u64> = self
            .models
            .iter()
            .flat_map(|m| m.pending.iter().copied())
            .collect();
        for id in 0..self.tracker.created() as u64 {
            let drops = self.tracker.drops_of(id);
            if bound.contains(&id) {
                assert_eq!(drops, 0, "bound instance {id} was dropped");
            } else if pending.contains(&id) {
                assert!(drops <= 1, "pending instance {id} dropped {drops} times");
            } else {
                assert_eq!(drops, 1, "instance {id} not dropped exactly once");
            }
        }
    }

    fn finish(mut self) {
        for slot in &mut self.slots {
            drop(slot.take());
        }
        let tracker = self.tracker.clone();
        for w in std::mem::take(&mut self.workers) {
            w.join();
        }
        tracker.assert_all_dropped_once();
    }
}

fn config() -> Config {
    if cfg!(miri) {
        Config {
            cases: 4,
            failure_persistence: None,
            max_shrink_iters: 0,
            ..Config::default()
        }
    } else {
        Config {
            cases: 256,
            ..Config::default()
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matches_model(ops in proptest::collection::vec(op(), 1..MAX_OPS)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
            harness.check_drops();
        }
        harness.finish();
    }
}

/// A fixed sequence through every operation, so the model itself is
/// exercised even when proptest's random cases are few (Miri).
#[test]
fn model_smoke() {
    let mut h = Harness::new();
    let ops = [
        Op::Set {
            thread: 0,
            key: 0,
            val: 1,
        },
        Op::Set {
            thread: 1,
            key: 0,
            val: 2,
        },
        Op::Get { thread: 0, key: 0 },
        Op::CreateKey {
            key: 1,
            init: Some(9),
            eager: false,
        },
        Op::DropKey { on: None, key: 1 },
        Op::CreateKey {
            key: 1,
            init: Some(9),
            eager: false,
        },
        Op::Get { thread: 1, key: 1 },
        Op::WithMut {
            thread: 1,
            key: 1,
            val: 10,
        },
        Op::With { thread: 1, key: 1 },
        Op::Scoped {
            thread: 0,
            key: 0,
            val: 3,
        },
        Op::Guarded {
            thread: 0,
            key: 0,
            val: 4,
            remove_first: true,
        },
        Op::Guarded {
            thread: 1,
            key: 2,
            val: 5,
            remove_first: false,
        },
        Op::DropKey {
            on: Some(0),
            key: 0,
        },
        Op::IsSet { thread: 1, key: 1 },
        Op::Remove { thread: 1, key: 1 },
        Op::ExitThread { thread: 0 },
        Op::Set {
            thread: 0,
            key: 2,
            val: 6,
        },
    ];
    for op in &ops {
        h.apply(op);
        h.check_drops();
    }
    h.finish();
}
