//! The sentence of each finding: what leaked where, how it was found, and
//! the fix that applies to this case. Uses `finding` and `detection`.
//!
//! Every sentence is read by someone on call: it names tasks as tasks
//! ("task handle_request, entered at src/api.rs:10:5"), sites as
//! `file:line:col`, and suggests `#[thread_local_scoped(..)]` for a function
//! that binds the value, never for a task that is only a label.

use core::fmt;
use core::panic::Location;
use std::time::Duration;

use tl_core::checkpoint::TaskId;

use crate::detection::Detection;
use crate::finding::{Finding, FindingKind, LEAK_PREFIX};

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

/// "task NAME, entered at SITE" (or without the site when unknown); in the
/// middle of a sentence, followed by [`Task::close`].
struct Task(&'static str, Option<&'static Location<'static>>);

impl Task {
    fn of(id: TaskId) -> Self {
        Self(id.name, Some(id.location))
    }

    /// The comma that closes "entered at SITE" mid-sentence.
    fn close(&self) -> &'static str {
        if self.1.is_some() { "," } else { "" }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.0)?;
        if let Some(site) = self.1 {
            write!(f, ", entered at {site}")?;
        }
        Ok(())
    }
}

impl Finding {
    fn task_that_left(&self) -> Option<Task> {
        self.task.map(|name| Task(name, self.task_site))
    }

    /// Where, how and in which task the value was bound: " at SITE" or " by
    /// the key's initializer, on a read at SITE ...", then " in task T,
    /// entered at S" when known.
    fn origin(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bound_where(f)?;
        match self.task_that_left() {
            Some(task) => write!(f, " in {task}"),
            None => Ok(()),
        }
    }

    fn bound_where(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.by_initializer {
            write!(
                f,
                " by the key's initializer, on a read (get/with) at {} that found nothing bound",
                Site(self.set_site)
            )
        } else {
            write!(f, " at {}", Site(self.set_site))
        }
    }

    /// The two fixes: unbind when the work ends, or declare a cache.
    fn fix(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = receiver(self);
        let declared = Site(self.key.map(|k| k.declared_at));
        let set = Site(self.set_site);
        if self.by_initializer {
            return write!(
                f,
                " If it is a per-thread cache, declare the key .per_thread() at {declared}; otherwise remove() it when the work that read it ends (a #[thread_local_scoped({guard})] guard on that function does it on every way out)",
                guard = guard_arg(self)
            );
        }
        write!(
            f,
            " Remove it when the work ends: bind it with {key}.scope(..) instead of set(..) at {set}, or guard the function that sets it with #[thread_local_scoped({guard})]; or, if it is a deliberate per-thread cache, declare the key .per_thread() at {declared}",
            guard = guard_arg(self)
        )
    }
}

/// The key as `#[thread_local_scoped(..)]`'s argument: `self.field` for a
/// field the derive named `Service.field`, the name of a static (a path),
/// and `..` for an unnamed key or a name that is not a path.
fn guard_arg(finding: &Finding) -> String {
    let Some(name) = finding.key.and_then(|k| k.name) else {
        return "..".to_owned();
    };
    let is_ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    match name.split_once('.') {
        Some((service, field)) if is_ident(service) && is_ident(field) => format!("self.{field}"),
        None if name.split("::").all(is_ident) => name.to_owned(),
        _ => "..".to_owned(),
    }
}

/// The key as code that calls its methods: [`guard_arg`], or the key's
/// report name when that is `..`.
fn receiver(finding: &Finding) -> String {
    match guard_arg(finding) {
        arg if arg == ".." => finding.key_name(),
        arg => arg,
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let thread = self.thread.display_name();
        let id = self.thread.id;
        let key = self.key_name();
        let ty = self.key.map_or("?", |k| k.type_name);
        let bytes = self.bytes;
        let set = Site(self.set_site);
        let age = Human(self.age.unwrap_or_default());
        write!(f, "{LEAK_PREFIX} ")?;
        match (self.kind, self.found_by) {
            (FindingKind::Stranded, _) => {
                let dead = Human(self.dead_for.unwrap_or_default());
                write!(
                    f,
                    "thread \"{thread}\" (#{id}) still holds a {bytes}-byte value of {key} ({ty}) {dead} after that ThreadLocal was dropped"
                )?;
                if let Some(task) = self.task_that_left() {
                    write!(f, "; it was left by {task}")?;
                }
                write!(
                    f,
                    "; an idle pooled thread never drops it. Unbind it on every thread before dropping the key: bind it with {receiver}.scope(..) instead of set(..) at {set}, or guard the function that sets it with #[thread_local_scoped({guard})]",
                    receiver = receiver(self),
                    guard = guard_arg(self)
                )
            }
            (FindingKind::Growth, _) => growth(self, f),
            (FindingKind::Unreleased, Detection::TaskEnd) => {
                let task = self
                    .task_that_left()
                    .unwrap_or(Task("<unnamed task>", None));
                write!(
                    f,
                    "{task}{close} left {key} ({ty}, {bytes} bytes) set on thread \"{thread}\" (#{id})",
                    close = task.close()
                )?;
                if self.panicking {
                    f.write_str(" when it panicked")?;
                }
                f.write_str("; it was bound")?;
                self.bound_where(f)?;
                f.write_str(", and the next task on this thread can read it.")?;
                self.fix(f)
            }
            (FindingKind::Unreleased, Detection::Overwrite) => {
                let by = self
                    .overwritten_by
                    .map_or(Task("<unnamed task>", None), Task::of);
                write!(
                    f,
                    "{by}{close} on thread \"{thread}\" (#{id}) found {key} ({ty}, {bytes} bytes) already set when it began, and replaced it; the value was bound {age} earlier",
                    close = by.close()
                )?;
                self.origin(f)?;
                if self.task.is_none() {
                    f.write_str(" by an earlier task or by code outside any task")?;
                }
                f.write_str(", and left behind, so the work after it could read it.")?;
                self.fix(f)
            }
            (FindingKind::Unreleased, Detection::WorkerStop) => {
                let pool = self.task.unwrap_or("a pool");
                write!(
                    f,
                    "pool thread \"{thread}\" (#{id}) of {pool} still had {key} ({ty}, {bytes} bytes) set when it stopped; it was bound {age} earlier at {set}, and the tasks after it on that thread could read it."
                )?;
                self.fix(f)
            }
            (FindingKind::Unreleased, found_by) => {
                let when = match found_by {
                    Detection::Park => "went idle (parked)",
                    Detection::Gate => "was checked at the end of the audit",
                    _ => "was scanned",
                };
                write!(
                    f,
                    "thread \"{thread}\" (#{id}) was running no task when it {when}, yet held {key} ({ty}, {bytes} bytes), bound {age} earlier"
                )?;
                self.origin(f)?;
                f.write_str("; the next work on this thread can read it.")?;
                self.fix(f)
            }
        }
    }
}

fn growth(this: &Finding, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let thread = this.thread.display_name();
    let id = this.thread.id;
    write!(
        f,
        "thread \"{thread}\" (#{id}) holds {entries} thread-local values retaining {bytes} bytes, over the limit of",
        entries = this.entries.unwrap_or(0),
        bytes = this.bytes
    )?;
    match (this.max_entries, this.max_bytes) {
        (Some(e), Some(b)) => write!(f, " {e} values or {b} bytes")?,
        (Some(e), None) => write!(f, " {e} values")?,
        (None, Some(b)) => write!(f, " {b} bytes")?,
        (None, None) => f.write_str(" the configured threshold")?,
    }
    if this.key.is_some() {
        write!(
            f,
            "; the largest is {key} ({ty}, {kb} bytes, set at {set}): find where such values are set and never removed",
            key = this.key_name(),
            ty = this.key.map_or("?", |k| k.type_name),
            kb = this.key_bytes.unwrap_or(0),
            set = Site(this.set_site),
        )
    } else {
        f.write_str("; find where values are set and never removed")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tl_core::ThreadLocal;
    use tl_core::registry::ThreadInfo;

    use super::*;

    fn finding(key: &ThreadLocal<u8>) -> Finding {
        let thread = ThreadInfo {
            id: 3,
            std_id: std::thread::current().id(),
            name: Some("pool-1".into()),
        };
        let mut f = Finding::new(FindingKind::Unreleased, thread, Instant::now());
        f.key = Some(key.info());
        f
    }

    #[test]
    fn the_guard_names_statics_fields_and_nothing_else() {
        let cases = [
            ("USER", "USER", "USER"),
            ("app::auth::USER", "app::auth::USER", "app::auth::USER"),
            ("OrderService.conn", "self.conn", "self.conn"),
            ("current user", "..", "current user"),
        ];
        for (name, guard, receiver_) in cases {
            let key = ThreadLocal::<u8>::new().named(name);
            let f = finding(&key);
            assert_eq!(guard_arg(&f), guard, "{name}");
            assert_eq!(receiver(&f), receiver_, "{name}");
        }
        let unnamed = ThreadLocal::<u8>::new();
        assert_eq!(guard_arg(&finding(&unnamed)), "..");
    }

    #[test]
    fn sentences_punctuate_tasks_with_and_without_sites() {
        let key = ThreadLocal::<u8>::new().named("USER");
        let mut f = finding(&key);
        f.task = Some("handle_request");
        let text = f.to_string();
        assert!(
            text.contains("task handle_request left USER (u8, 0 bytes)"),
            "{text}"
        );
        f.task_site = Some(Location::caller());
        let text = f.to_string();
        let site = f.task_site.unwrap();
        assert!(
            text.contains(&format!(
                "task handle_request, entered at {site}, left USER"
            )),
            "{text}"
        );
        assert!(!text.contains(",,") && !text.contains(",;"), "{text}");
        f.found_by = Detection::Idle;
        f.by_initializer = true;
        let text = f.to_string();
        assert!(
            text.contains("by the key's initializer")
                && text.contains("in task handle_request, entered at "),
            "{text}"
        );
        assert!(!text.contains(",,") && !text.contains(",;"), "{text}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1.500s");
        assert_eq!(Human(Duration::from_secs(200)).to_string(), "3m20s");
        assert_eq!(Human(Duration::from_millis(200_999)).to_string(), "3m20s");
    }
}
