//! The process's single auditor slot and tl-core's task-end hook.
//!
//! tl-core's hook is a plain `fn` pointer, so the hook finds the installed
//! auditor here. The slot is read on audited task ends only: the sampling
//! decision comes first and touches no lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};

use tl_core::checkpoint::{self, TaskEnd};

use crate::auditor::Shared;
use crate::error::AuditError;
use crate::mode::Mode;
use crate::{sampling, task};

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
        let hook: fn(&TaskEnd<'_>) = if shared.config.sample_every > 1 {
            sampling::configure(shared.config.sample_every);
            on_sampled_task_end
        } else {
            audit_task_end
        };
        checkpoint::set_task_end_hook(Some(hook));
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
        }
        *slot = None;
    }
}

/// tl-core's task-end hook in `sampled` mode: kept tiny, so that a task end
/// that is not sampled costs only the decision. Hooks run on the task's own
/// thread when a `TaskScope` drops, possibly while unwinding, so they never
/// panic.
fn on_sampled_task_end(end: &TaskEnd<'_>) {
    if sampling::should_audit() {
        audit_task_end(end);
    }
}

/// The hook in `full` and `deny` modes, and the audit of a sampled task end.
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
            let site = task::resolve_site(end.location());
            shared.task_ended(end.task(), Some(site), end.panicking(), leftovers);
        }
    }));
}
