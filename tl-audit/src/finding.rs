//! [`Finding`]: one leak, with everything needed to fix it, and the sentence
//! that tells how.

use core::fmt;
use core::panic::Location;
use core::str::FromStr;
use std::time::{Duration, Instant};

use tl_core::KeyInfo;
use tl_core::registry::ThreadInfo;

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
    /// task end (see [`worker_stopping`](crate::worker_stopping)).
    pub at_worker_stop: bool,
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

/// `"250ms"`, `"1.500s"`, `"3m20s"`: compact; to the millisecond under a
/// minute, to the (truncated) second from a minute on, where milliseconds
/// no longer help anyone read a leak's age.
pub(crate) struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            0..1_000 => write!(f, "{ms}ms"),
            1_000..60_000 => write!(f, "{}.{:03}s", ms / 1000, ms % 1000),
            _ => write!(f, "{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
        }
    }
}

struct Site(Option<&'static Location<'static>>);

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(site) => write!(f, "{site}"),
            None => f.write_str("an unknown site"),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let thread = self.thread.display_name();
        let id = self.thread.id;
        let key = self.key_name();
        let ty = self.key.map_or("?", |k| k.type_name);
        let declared = self.key.map(|k| k.declared_at);
        let set = Site(self.set_site);
        write!(f, "{LEAK_PREFIX} ")?;
        match self.kind {
            FindingKind::Stranded => {
                let dead = Human(self.dead_for.unwrap_or_default());
                write!(
                    f,
                    "thread \"{thread}\" (#{id}) still holds a {bytes}-byte value of {key} ({ty}) {dead} after that ThreadLocal was dropped",
                    bytes = self.bytes
                )?;
                if let Some(task) = self.task {
                    write!(f, ", left by task {task}")?;
                }
                write!(
                    f,
                    "; an idle pooled thread never drops it: unbind it on every thread before dropping the key, e.g. bind it with {key}.scope(..) instead of set(..) at {set}, or list it in the handler's #[thread_local_scoped(..)]"
                )
            }
            FindingKind::Unreleased if self.at_worker_stop => write!(
                f,
                "pool thread \"{thread}\" (#{id}) of {pool} still had {key} ({ty}, {bytes} bytes) set when it stopped; a task run on it did not remove it, so the tasks after it could read it. Remove it before each task ends: bind it with {key}.scope(..) at {set} or list it in the handler's #[thread_local_scoped(..)], or declare it .per_thread() at {declared} if it is a deliberate cache",
                pool = self.task.unwrap_or("a pool"),
                bytes = self.bytes,
                declared = Site(declared),
            ),
            FindingKind::Unreleased => {
                let task = self.task.unwrap_or("<unnamed task>");
                write!(
                    f,
                    "task {task} left {key} ({ty}, {bytes} bytes) set on thread \"{thread}\" (#{id})",
                    bytes = self.bytes
                )?;
                if self.panicking {
                    f.write_str(" when it panicked")?;
                }
                write!(
                    f,
                    "; the next task on this thread can read it. Remove it before the task ends: list it in #[thread_local_scoped(..)] on {task}, or bind it with {key}.scope(..) at {set}; or declare it .per_thread() at {declared} if it is a deliberate cache",
                    declared = Site(declared),
                )?;
                if let Some(site) = self.task_site {
                    write!(f, " (task entered at {site})")?;
                }
                Ok(())
            }
            FindingKind::Growth => {
                write!(
                    f,
                    "thread \"{thread}\" (#{id}) holds {entries} thread-local values retaining {bytes} bytes, over the limit of",
                    entries = self.entries.unwrap_or(0),
                    bytes = self.bytes
                )?;
                match (self.max_entries, self.max_bytes) {
                    (Some(e), Some(b)) => write!(f, " {e} values or {b} bytes")?,
                    (Some(e), None) => write!(f, " {e} values")?,
                    (None, Some(b)) => write!(f, " {b} bytes")?,
                    (None, None) => f.write_str(" the configured threshold")?,
                }
                if self.key.is_some() {
                    write!(
                        f,
                        "; the largest is {key} ({ty}, {kb} bytes, set at {set}): find where such values are set and never removed",
                        kb = self.key_bytes.unwrap_or(0)
                    )
                } else {
                    f.write_str("; find where values are set and never removed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1.500s");
        assert_eq!(Human(Duration::from_secs(200)).to_string(), "3m20s");
        assert_eq!(Human(Duration::from_millis(200_999)).to_string(), "3m20s");
    }

    #[test]
    fn kinds_round_trip() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(kind));
        }
        assert!("summary".parse::<FindingKind>().is_err());
    }
}
