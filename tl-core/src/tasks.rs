//! Per-thread task state: how deep in task scopes the thread is, the
//! outermost task's identity and first bind, the task-end sampling countdown,
//! and the last few tasks that ended, so that a value left behind can be
//! attributed to the innermost task that was running when it was bound.
//!
//! Owner-only: `Cell`s in a destructor-less thread-local of its own, reached
//! with [`with`]. The one bit other threads need, whether the thread is
//! inside a task now, is mirrored into the thread's registration by `map`.

use core::cell::Cell;
use core::panic::Location;

use crate::sync;

/// How many ended tasks a thread remembers for attribution.
pub(crate) const RECENT: usize = 8;

/// A task's identity: its name and where it was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
    /// The task's name (for `#[thread_local_scoped]`, the handler's path).
    pub name: &'static str,
    /// Where the task scope was entered.
    pub location: &'static Location<'static>,
}

/// A task that ended on this thread, with the binds it covered: those with
/// `start < bind_seq <= end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EndedTask {
    pub(crate) id: TaskId,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// How many tasks enclosed it.
    pub(crate) depth: u32,
}

/// See the module docs.
pub(crate) struct TaskState {
    /// Task scopes entered and not yet left.
    pub(crate) depth: Cell<u32>,
    /// The bind counter when the outermost open task began; 0 outside tasks
    /// (bind numbers start at 1, so no bind is "before" it then).
    pub(crate) outer_start: Cell<u64>,
    /// The outermost open task, if any.
    pub(crate) outer: Cell<Option<TaskId>>,
    /// Task ends left before the next sampled one (see `checkpoint`).
    pub(crate) countdown: Cell<u32>,
    /// The sampling generation `countdown` counts for.
    pub(crate) sampling_generation: Cell<u32>,
    /// A ring of the last [`RECENT`] tasks that ended (inner ones included),
    /// written only while an auditor's hook is installed.
    recent: Cell<[Option<EndedTask>; RECENT]>,
    /// The next slot of `recent` to write.
    recent_next: Cell<usize>,
}

sync::local! {
    static TASKS: TaskState = const { TaskState::new() };
}

/// Runs `f` with this thread's task state. Never fails (no destructor).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&TaskState) -> R) -> R {
    sync::with_plain_local(&TASKS, f, TaskState::new)
}

impl TaskState {
    const fn new() -> Self {
        Self {
            depth: Cell::new(0),
            outer_start: Cell::new(0),
            outer: Cell::new(None),
            countdown: Cell::new(0),
            sampling_generation: Cell::new(0),
            recent: Cell::new([None; RECENT]),
            recent_next: Cell::new(0),
        }
    }

    /// Remembers a task that ended.
    pub(crate) fn record_end(&self, ended: EndedTask) {
        let slots: &Cell<[Option<EndedTask>]> = &self.recent;
        let next = self.recent_next.get();
        slots.as_slice_of_cells()[next].set(Some(ended));
        self.recent_next.set((next + 1) % RECENT);
    }

    /// The innermost task that was running when bind `bind_seq` happened:
    /// among the remembered ended tasks and the open outermost one, the one
    /// that began last among those covering it, and of those that began
    /// and ended together (entering a task binds nothing), the deepest. `None` if none does (bound
    /// outside any task, or by a task no longer remembered).
    pub(crate) fn task_of(&self, bind_seq: u64, now: u64) -> Option<TaskId> {
        let open = self.outer.get().map(|id| EndedTask {
            id,
            start: self.outer_start.get(),
            end: now,
            depth: 0,
        });
        self.recent
            .get()
            .into_iter()
            .flatten()
            .chain(open)
            .filter(|t| t.start < bind_seq && bind_seq <= t.end)
            .max_by_key(|t| (t.start, core::cmp::Reverse(t.end), t.depth))
            .map(|t| t.id)
    }
}
