//! Beyond the listed keys: a task-scoped value bound during a guarded
//! handler and still bound when it exits reaches the installed task-end
//! hook, after the listed keys were cleaned up.
//!
//! The hook is process-wide, so this file holds one test.

use std::sync::Mutex;

use tl_core::ThreadLocal;
use tl_core::checkpoint::{self, TaskEnd};
use tl_core::thread_local_scoped;

static LISTED: ThreadLocal<u32> = ThreadLocal::new().named("LISTED");
static FORGOTTEN: ThreadLocal<u32> = ThreadLocal::new().named("FORGOTTEN");
static CACHE: ThreadLocal<u32> = ThreadLocal::new().named("CACHE").per_thread();

/// (task, leftover names, whether `LISTED` was still bound, panicking)
type Report = (&'static str, Vec<Option<&'static str>>, bool, bool);

static REPORTS: Mutex<Vec<Report>> = Mutex::new(Vec::new());

fn record(end: &TaskEnd<'_>) {
    let names = end
        .leftovers()
        .iter()
        .map(|leftover| leftover.entry.key.name)
        .collect();
    let report = (end.task(), names, LISTED.is_set(), end.panicking());
    REPORTS.lock().unwrap().push(report);
}

#[thread_local_scoped(LISTED)]
fn leaky() {
    LISTED.set(1);
    FORGOTTEN.set(2);
    CACHE.set(3);
}

#[thread_local_scoped(LISTED, task = "checkout")]
fn tidy() {
    LISTED.set(1);
}

#[thread_local_scoped(LISTED)]
fn leaky_then_panics() {
    FORGOTTEN.set(4);
    panic!("handler failed");
}

#[test]
fn leftovers_beyond_the_listed_keys_reach_the_hook() {
    // Without a hook, nothing is reported and nothing else changes.
    leaky();
    assert_eq!(FORGOTTEN.remove(), Some(2));

    let previous = checkpoint::set_task_end_hook(Some(record));
    leaky();
    tidy();
    std::panic::catch_unwind(leaky_then_panics).unwrap_err();
    checkpoint::set_task_end_hook(previous);

    let reports = std::mem::take(&mut *REPORTS.lock().unwrap());
    assert_eq!(
        reports,
        vec![
            (
                concat!(module_path!(), "::leaky"),
                vec![Some("FORGOTTEN")],
                false,
                false
            ),
            ("checkout", vec![], false, false),
            (
                concat!(module_path!(), "::leaky_then_panics"),
                vec![Some("FORGOTTEN")],
                false,
                true
            ),
        ]
    );
}
