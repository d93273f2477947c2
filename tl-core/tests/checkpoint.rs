//! Own-thread checkpoints: `Mark::leftovers` and `bound` (which values count
//! as left behind), opt-in value rendering, and the global task-end hook
//! (tests that install it are serialized).

mod common;

use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::Mutex;
use std::thread::ThreadId;

use common::{on_new_thread, serial};
use tl_core::ThreadLocal;
use tl_core::checkpoint::{self, Leftover, TaskEnd, TaskScope};

static TASK_A: ThreadLocal<String> = ThreadLocal::new().named("checkpoint::A");
static TASK_B: ThreadLocal<String> = ThreadLocal::new().named("checkpoint::B");
static PER_THREAD: ThreadLocal<Vec<u8>> =
    ThreadLocal::new().named("checkpoint::cache").per_thread();
static REVEALED: ThreadLocal<String> = ThreadLocal::new()
    .named("checkpoint::revealed")
    .reveal_in_reports();

fn names(leftovers: &[Leftover]) -> Vec<&'static str> {
    let mut names: Vec<_> = leftovers
        .iter()
        .map(|l| l.entry.key.name.unwrap_or("?"))
        .collect();
    names.sort_unstable();
    names
}

/// Only task-scoped values of live keys, bound since the mark and still
/// bound, are left over.
#[test]
fn leftovers_since_mark() {
    on_new_thread(|| {
        TASK_A.set("before".to_owned());
        let dead_before = ThreadLocal::new().named("checkpoint::dead");
        dead_before.set(1u8);
        let mark = checkpoint::mark();
        assert!(mark.leftovers().is_empty(), "nothing bound since the mark");

        TASK_B.set("b".to_owned());
        PER_THREAD.set(vec![1]); // per-thread: never a leftover
        let removed = ThreadLocal::new().named("checkpoint::removed");
        removed.set(1u8);
        removed.remove();
        let dead = ThreadLocal::new().named("checkpoint::dead");
        dead.set(1u8);
        drop(dead);
        drop(dead_before);
        assert_eq!(names(&mark.leftovers()), ["checkpoint::B"]);
        assert!(
            mark.leftovers()[0].value.is_none(),
            "not revealed by default"
        );
        assert!(mark.leftovers()[0].entry.bound);

        // Rebinding a value bound before the mark makes it a leftover.
        TASK_A.set("after".to_owned());
        assert_eq!(names(&mark.leftovers()), ["checkpoint::A", "checkpoint::B"]);
        TASK_A.remove();
        TASK_B.remove();
        assert!(mark.leftovers().is_empty());
        // `with_mut` does not bind.
        TASK_A.set("x".to_owned());
        let mark = checkpoint::mark();
        TASK_A.with_mut(|v| v.unwrap().push('y'));
        assert!(mark.leftovers().is_empty());
    });
}

/// `bound` lists every task-scoped value of a live key bound now.
#[test]
fn bound_lists_task_scoped_values() {
    on_new_thread(|| {
        TASK_A.set("a".to_owned());
        PER_THREAD.set(vec![]);
        let mark = checkpoint::mark();
        TASK_B.set("b".to_owned());
        assert_eq!(
            names(&checkpoint::bound()),
            ["checkpoint::A", "checkpoint::B"]
        );
        assert_eq!(names(&mark.leftovers()), ["checkpoint::B"]);
    });
}

/// `reveal_in_reports` renders the value's `Debug` form in own-thread
/// reports; other keys never do.
#[test]
fn reveal_in_reports() {
    on_new_thread(|| {
        let mark = checkpoint::mark();
        REVEALED.set("shown".to_owned());
        TASK_A.set("hidden".to_owned());
        let leftovers = mark.leftovers();
        let revealed = leftovers
            .iter()
            .find(|l| l.entry.key.name == Some("checkpoint::revealed"))
            .unwrap();
        assert_eq!(revealed.value.as_deref(), Some("\"shown\""));
        let hidden = leftovers
            .iter()
            .find(|l| l.entry.key.name == Some("checkpoint::A"))
            .unwrap();
        assert_eq!(hidden.value, None);
        assert!(!format!("{hidden:?}").contains("hidden"));
        // The registry, read from any thread, never renders values.
        let snapshots = format!("{:?}", tl_core::registry::snapshot_all());
        assert!(!snapshots.contains("shown"));
        assert!(!snapshots.contains("\"hidden\""));
    });
}

/// A guard that restores a value bound before the mark leaves nothing over.
#[test]
fn guard_restore_is_not_a_leftover() {
    on_new_thread(|| {
        TASK_A.set("outer".to_owned());
        let mark = checkpoint::mark();
        {
            let _guard = TASK_A.guard();
            TASK_A.set("inner".to_owned());
        }
        assert_eq!(TASK_A.get().as_deref(), Some("outer"));
        assert!(mark.leftovers().is_empty(), "{:?}", mark.leftovers());
    });
}

/// A scope that restores a value bound before the mark leaves nothing over
/// either: the task put things back as it found them.
#[test]
fn scope_restore_is_not_a_leftover() {
    on_new_thread(|| {
        TASK_A.set("outer".to_owned());
        let mark = checkpoint::mark();
        drop(TASK_A.scope("inner".to_owned()));
        assert_eq!(TASK_A.get().as_deref(), Some("outer"));
        assert!(mark.leftovers().is_empty(), "{:?}", mark.leftovers());
    });
}

// === the task-end hook (global: serialized) ===

static HOOK_LOCK: Mutex<()> = Mutex::new(());

#[derive(Clone, Debug)]
struct Ended {
    thread: ThreadId,
    task: &'static str,
    line: u32,
    panicking: bool,
    leftovers: Vec<&'static str>,
}

static ENDED: Mutex<Vec<Ended>> = Mutex::new(Vec::new());

fn record(end: &TaskEnd<'_>) {
    let leftovers = names(&end.leftovers());
    assert_eq!(names(&end.mark().leftovers()), leftovers);
    assert_eq!(end.location().file(), file!());
    ENDED.lock().unwrap().push(Ended {
        thread: std::thread::current().id(),
        task: end.task(),
        line: end.location().line(),
        panicking: end.panicking(),
        leftovers,
    });
}

/// Installs `record` for the closure's duration and returns what it saw.
fn with_hook(f: impl FnOnce() + Send + 'static) -> Vec<Ended> {
    let _serial = serial(&HOOK_LOCK);
    ENDED.lock().unwrap().clear();
    let previous = checkpoint::set_task_end_hook(Some(record));
    assert!(previous.is_none());
    assert!(checkpoint::has_task_end_hook());
    let result = catch_unwind(AssertUnwindSafe(|| on_new_thread(f)));
    let ours = checkpoint::set_task_end_hook(None);
    assert!(ours.is_some(), "our hook was still installed");
    assert!(!checkpoint::has_task_end_hook());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    std::mem::take(&mut *ENDED.lock().unwrap())
}

#[test]
fn hook_sees_task_end() {
    let (tx, rx) = std::sync::mpsc::channel();
    let ended = with_hook(move || {
        tx.send((std::thread::current().id(), line!() + 1)).unwrap();
        let task = TaskScope::enter("handle_request");
        assert!(format!("{task:?}").contains("handle_request"));
        TASK_A.set("leaked".to_owned());
        PER_THREAD.set(vec![0]);
        let cleaned = TASK_B.guard();
        TASK_B.set("cleaned".to_owned());
        drop(cleaned);
        drop(task);
    });
    let (thread, line) = rx.recv().unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let end = &ended[0];
    assert_eq!(end.thread, thread, "called on the task's own thread");
    assert_eq!(end.task, "handle_request");
    assert_eq!(end.line, line);
    assert!(!end.panicking);
    assert_eq!(end.leftovers, ["checkpoint::A"]);
}

#[test]
fn hook_sees_panicking_task() {
    let ended = with_hook(|| {
        let result = catch_unwind(|| {
            let _task = TaskScope::enter("failing");
            TASK_A.set("half done".to_owned());
            panic!("task fails (deliberate test panic)");
        });
        assert!(result.is_err());
    });
    assert_eq!(ended.len(), 1);
    assert!(ended[0].panicking);
    assert_eq!(ended[0].leftovers, ["checkpoint::A"]);
}

#[test]
fn nested_tasks() {
    let ended = with_hook(|| {
        let outer = TaskScope::enter("outer");
        TASK_A.set("outer value".to_owned());
        {
            // A handler called by a handler: part of the outer task.
            let _inner = TaskScope::enter("inner");
            TASK_B.set("inner value".to_owned());
        }
        TASK_B.remove();
        drop(outer);
        // The thread is outside any task again: the next one is audited.
        let _again = TaskScope::enter("again");
    });
    let summary: Vec<_> = ended
        .iter()
        .map(|e| (e.task, e.leftovers.clone()))
        .collect();
    assert_eq!(
        summary,
        [("outer", vec!["checkpoint::A"]), ("again", vec![]),],
        "the inner task's end is not a task end; its value was the outer task's to clean up"
    );
    TASK_A.remove();
}

#[test]
fn no_hook_no_calls() {
    let _serial = serial(&HOOK_LOCK);
    ENDED.lock().unwrap().clear();
    assert!(!checkpoint::has_task_end_hook());
    on_new_thread(|| {
        let _task = TaskScope::enter("unobserved");
        TASK_A.set("x".to_owned());
    });
    assert!(ENDED.lock().unwrap().is_empty());
}

#[test]
fn sampling_calls_the_hook_for_one_task_end_in_n() {
    let ended = with_hook(|| {
        checkpoint::set_task_end_sampling(3);
        for _ in 0..7 {
            let _task = TaskScope::enter("sampled");
        }
        // A new rate restarts the countdown: the next end is seen at once.
        checkpoint::set_task_end_sampling(1);
        for _ in 0..4 {
            let _task = TaskScope::enter("after");
        }
    });
    let tasks: Vec<_> = ended.iter().map(|e| e.task).collect();
    // Task ends 1, 4 and 7 of the first seven, then every one.
    assert_eq!(
        tasks,
        [
            "sampled", "sampled", "sampled", "after", "after", "after", "after"
        ]
    );
}

/// A thread that counted down under one hook starts afresh under the next:
/// a strict auditor installed after a sampled one sees every task end.
#[test]
fn a_new_hook_restarts_each_threads_countdown() {
    let _serial = serial(&HOOK_LOCK);
    ENDED.lock().unwrap().clear();
    let worker = common::Worker::spawn();
    checkpoint::set_task_end_sampling(128);
    checkpoint::set_task_end_hook(Some(record));
    worker.run(|| {
        let _warmup = TaskScope::enter("warmup"); // sampled: countdown now 128
    });
    checkpoint::set_task_end_hook(None);
    checkpoint::set_task_end_sampling(1);
    checkpoint::set_task_end_hook(Some(record));
    worker.run(|| {
        let _task = TaskScope::enter("strict");
    });
    checkpoint::set_task_end_hook(None);
    let tasks: Vec<_> = ENDED.lock().unwrap().iter().map(|e| e.task).collect();
    assert_eq!(tasks, ["warmup", "strict"]);
}

#[test]
fn sampling_zero_means_every_task_end() {
    let ended = with_hook(|| {
        checkpoint::set_task_end_sampling(0);
        for _ in 0..3 {
            let _task = TaskScope::enter("every");
        }
        checkpoint::set_task_end_sampling(1);
    });
    assert_eq!(ended.len(), 3);
}

#[test]
fn enter_at_reports_the_given_location() {
    let site = Location::caller();
    let ended = with_hook(move || {
        let _task = TaskScope::enter_at("wrapped", site);
    });
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].line, site.line());
}
