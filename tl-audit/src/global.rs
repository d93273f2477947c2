//! The process's single auditor slot and tl-core's task-end hook.
//!
//! tl-core's hook is a plain `fn` pointer, so the hook finds the installed
//! auditor here. The slot is read on audited task ends only: tl-core's
//! sampling decides first (a thread-local countdown) and calls the hook for
//! sampled task ends only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};

use tl_core::checkpoint::{self, Leftover, TaskEnd, TaskId};

use crate::error::AuditError;
use crate::mode::Mode;
use crate::shared::Shared;

static ACTIVE: RwLock<Option<Arc<Shared>>> = RwLock::new(None);

/// The installed auditor, if any. The lock is released before returning,
/// so callers may emit events (which may re-enter the hook) freely.
pub(crate) fn active() -> Option<Arc<Shared>> {
    ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(Arc::clone)
}

/// Occupies the slot and, unless the mode is `off`, installs the hook.
pub(crate) fn claim(shared: &Arc<Shared>) -> Result<(), AuditError> {
    let mut slot = ACTIVE.write().unwrap_or_else(PoisonError::into_inner);
    if slot.is_some() {
        return Err(AuditError::AlreadyInstalled);
    }
    if shared.config.mode != Mode::Off {
        if checkpoint::has_task_end_hook() {
            return Err(AuditError::HookInUse);
        }
        // tl-core samples before calling the hook, so a task end that is not
        // audited costs a thread-local decrement and no call. The config's
        // rate is already 1 in `full` and `deny`. Both calls restart every
        // thread's countdown: an earlier sampled auditor's countdown must not
        // hide a thread's next task end from this one.
        checkpoint::set_task_end_sampling(shared.config.sample_every);
        checkpoint::set_task_end_hook(Some(audit_task_end));
        // Not sampled: a task that finds an earlier task's value and replaces
        // it is rare, and it is the leak that unsampled task ends would hide.
        checkpoint::set_overwrite_hook(Some(audit_overwrite));
    }
    *slot = Some(Arc::clone(shared));
    Ok(())
}

/// Removes the hook and frees the slot, if `shared` holds it.
pub(crate) fn release(shared: &Arc<Shared>) {
    let mut slot = ACTIVE.write().unwrap_or_else(PoisonError::into_inner);
    if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, shared)) {
        if shared.config.mode != Mode::Off {
            checkpoint::set_task_end_hook(None);
            checkpoint::set_overwrite_hook(None);
            checkpoint::set_task_end_sampling(1);
        }
        *slot = None;
    }
}

/// tl-core's task-end hook: the audit of a (sampled) task end. Hooks run on
/// the task's own thread when a `TaskScope` drops, possibly while unwinding,
/// so this never panics.
///
/// User code runs inside: the `Debug` of values revealed in reports, and the
/// subscriber the findings go to. A panic there is caught and the audit of
/// this task end abandoned, since unwinding out of a `TaskScope`'s drop would
/// abort the process if the task is already panicking.
#[inline(never)]
fn audit_task_end(end: &TaskEnd<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let leftovers = end.leftovers();
        if leftovers.is_empty() {
            return;
        }
        if let Some(shared) = active() {
            shared.task_ended(end.task(), Some(end.location()), end.panicking(), leftovers);
        }
    }));
}

/// tl-core's overwrite hook: a `set` in `task` replaced a value bound before
/// the task began. Runs inside that `set`, on its thread; never panics (as in
/// [`audit_task_end`]: user code runs inside).
#[inline(never)]
fn audit_overwrite(task: TaskId, leftover: &Leftover) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Some(shared) = active() {
            shared.overwritten(task, leftover.clone());
        }
    }));
}
