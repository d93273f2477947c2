//! [`Detection`]: how an unreleased value was found. Uses nothing else of
//! the crate.

use core::fmt;

/// How an [`Unreleased`](crate::FindingKind::Unreleased) value was found:
/// the `found_by` field of its event. Each bind is reported once, by
/// whichever of these sees it first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Detection {
    /// An audited task end found the value its task bound still set
    /// (`task_end`).
    #[default]
    TaskEnd,
    /// A `set` inside a task replaced a value bound before that task began,
    /// by an earlier task or outside any task (`overwrite`).
    Overwrite,
    /// A scan found the value bound, longer than
    /// [`idle_after`](crate::AuditorBuilder::idle_after), on a thread that is
    /// running no task (`idle`).
    Idle,
    /// A pool told the auditor its worker went idle (tokio's
    /// `on_thread_park`, or [`worker_idle`](crate::worker_idle)) while the
    /// value was bound (`park`).
    Park,
    /// A pool thread stopped while the value was bound
    /// ([`worker_stopping`](crate::worker_stopping)) (`worker_stop`).
    WorkerStop,
    /// The final gate ([`Auditor::finish`](crate::Auditor::finish),
    /// [`shutdown`](crate::Auditor::shutdown), an
    /// [`AuditScope`](crate::testing::AuditScope)) found the value still
    /// bound on a thread running no task (`gate`).
    Gate,
}

impl Detection {
    /// The `found_by` field's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TaskEnd => "task_end",
            Self::Overwrite => "overwrite",
            Self::Idle => "idle",
            Self::Park => "park",
            Self::WorkerStop => "worker_stop",
            Self::Gate => "gate",
        }
    }
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
