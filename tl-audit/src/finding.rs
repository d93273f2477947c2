//! [`Finding`]: one leak, with everything needed to fix it (the sentence
//! that tells how is in `message`), and [`Counts`] of findings by kind.

use core::fmt;
use core::panic::Location;
use core::str::FromStr;
use std::time::{Duration, Instant};

use tl_core::KeyInfo;
use tl_core::checkpoint::TaskId;
use tl_core::registry::ThreadInfo;

use crate::detection::Detection;

/// The fixed, grep-able start of every finding's message.
pub const LEAK_PREFIX: &str = "THREAD-LOCAL LEAK:";

/// What kind of leak a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingKind {
    /// A key died but a live thread still holds its value past the grace period.
    Stranded,
    /// A task-scoped value was still set on its thread when its task ended.
    Unreleased,
    /// A thread holds more values or bytes than the configured threshold.
    Growth,
}

impl FindingKind {
    /// `"stranded"`, `"unreleased"` or `"growth"`: the `kind` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stranded => "stranded",
            Self::Unreleased => "unreleased",
            Self::Growth => "growth",
        }
    }

    /// Every kind, in report order.
    pub const ALL: [Self; 3] = [Self::Stranded, Self::Unreleased, Self::Growth];
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// A `kind` that is not one of this version's [`FindingKind`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown finding kind {:?}: expected stranded, unreleased or growth",
            self.0
        )
    }
}

impl std::error::Error for UnknownKind {}

/// Findings counted by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Stranded values.
    pub stranded: u64,
    /// Unreleased values.
    pub unreleased: u64,
    /// Growth findings.
    pub growth: u64,
}

impl Counts {
    /// All findings.
    pub fn total(&self) -> u64 {
        // Saturating: counts read from a log may be anything.
        self.stranded
            .saturating_add(self.unreleased)
            .saturating_add(self.growth)
    }

    /// The count of one kind.
    pub fn of(&self, kind: FindingKind) -> u64 {
        match kind {
            FindingKind::Stranded => self.stranded,
            FindingKind::Unreleased => self.unreleased,
            FindingKind::Growth => self.growth,
        }
    }

    pub(crate) fn add(&mut self, kind: FindingKind) {
        match kind {
            FindingKind::Stranded => self.stranded += 1,
            FindingKind::Unreleased => self.unreleased += 1,
            FindingKind::Growth => self.growth += 1,
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stranded, {} unreleased, {} growth",
            self.stranded, self.unreleased, self.growth
        )
    }
}

/// One leak. Never holds a value's contents unless its key opted in with
/// `ThreadLocal::reveal_in_reports` (then [`value`](Self::value) is set).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The thread holding the value(s).
    pub thread: ThreadInfo,
    /// The key; for growth, the key with the largest bound value on the thread.
    pub key: Option<KeyInfo>,
    /// Bytes retained by the value (for growth: by all the thread's values).
    pub bytes: usize,
    /// How long the value had been bound when found (for growth: the largest
    /// value). Binds are stamped with tl-core's coarse clock, so this may
    /// overstate the age by up to the auditor's interval (with a manual
    /// auditor, by up to the time since the last scan).
    pub age: Option<Duration>,
    /// Stranded: how long ago the key died (or, for a key whose death the
    /// auditor could not know of, since the first scan that saw the value).
    pub dead_for: Option<Duration>,
    /// Where the value was bound.
    pub set_site: Option<&'static Location<'static>>,
    /// The task that left the value: for unreleased findings the task that
    /// ended (for a worker stop, the pool's name); for stranded findings the
    /// task, if an audited task end saw it leave this very value.
    pub task: Option<&'static str>,
    /// Where the task was entered (its handler), when known.
    pub task_site: Option<&'static Location<'static>>,
    /// Unreleased: the value was found when its pool thread stopped, not at a
    /// task end (see [`worker_stopping`](crate::worker_stopping)); the same
    /// as `found_by == Detection::WorkerStop`.
    pub at_worker_stop: bool,
    /// Unreleased: how the value was found.
    pub found_by: Detection,
    /// Unreleased: the value was bound by its key's initializer, on a read
    /// (`get`/`with`) at [`set_site`](Self::set_site) that found nothing bound.
    pub by_initializer: bool,
    /// Unreleased, found by [`Detection::Overwrite`]: the task whose `set`
    /// replaced the value (it could have read the earlier work's value).
    pub overwritten_by: Option<TaskId>,
    /// Unreleased: the task ended by a panic.
    pub panicking: bool,
    /// Growth: bound values on the thread.
    pub entries: Option<usize>,
    /// Growth: bytes retained by the largest value ([`key`](Self::key)'s).
    pub key_bytes: Option<usize>,
    /// Growth: the thresholds in force.
    pub max_entries: Option<usize>,
    /// Growth: the thresholds in force.
    pub max_bytes: Option<usize>,
    /// The value's `Debug` form, only for keys that opted in.
    pub value: Option<String>,
    /// When it was found.
    pub found_at: Instant,
}

impl Finding {
    pub(crate) fn new(kind: FindingKind, thread: ThreadInfo, found_at: Instant) -> Self {
        Self {
            kind,
            thread,
            key: None,
            bytes: 0,
            age: None,
            dead_for: None,
            set_site: None,
            task: None,
            task_site: None,
            at_worker_stop: false,
            found_by: Detection::TaskEnd,
            by_initializer: false,
            overwritten_by: None,
            panicking: false,
            entries: None,
            key_bytes: None,
            max_entries: None,
            max_bytes: None,
            value: None,
            found_at,
        }
    }

    /// The key's report name (its name, or `ThreadLocal<type>@site`).
    pub fn key_name(&self) -> String {
        self.key
            .map_or_else(|| "-".to_owned(), |k| k.display_name())
    }

    /// The event message: [`LEAK_PREFIX`], then a sentence that says what
    /// leaked where and what to do about it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
impl Finding {
    /// An unreleased finding of `key` on thread 1, found `at` (for unit tests).
    pub(crate) fn unreleased_on_thread_1(key: KeyInfo, at: Instant) -> Self {
        let thread = ThreadInfo {
            id: 1,
            std_id: std::thread::current().id(),
            name: None,
        };
        let mut f = Self::new(FindingKind::Unreleased, thread, at);
        f.key = Some(key);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(kind));
        }
        assert!("summary".parse::<FindingKind>().is_err());
    }
}
