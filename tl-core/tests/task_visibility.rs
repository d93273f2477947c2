//! What an auditor learns about tasks without the thread's help: whether a
//! thread is inside a task (read from another thread), the overwrite hook (a
//! `set` in a task replacing a value bound before the task began), binds made
//! by an initializer, and which task a leftover was bound in.

mod common;

use std::sync::Mutex;
use std::sync::mpsc;

use common::{on_new_thread, serial};
use tl_core::ThreadLocal;
use tl_core::checkpoint::{self, Leftover, TaskId, TaskScope};
use tl_core::registry;

static USER: ThreadLocal<String> = ThreadLocal::new().named("visibility::USER");
static CACHE: ThreadLocal<u8> = ThreadLocal::new().named("visibility::CACHE").per_thread();
static DEPTH: ThreadLocal<u32> = ThreadLocal::with_initial(|| 7).named("visibility::DEPTH");

/// Serializes the tests that install process-wide hooks.
static HOOK_LOCK: Mutex<()> = Mutex::new(());

#[test]
fn another_thread_sees_whether_a_thread_is_inside_a_task() {
    let (to_main, from_worker) = mpsc::channel();
    let (to_worker, from_main) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        USER.set("registers the thread".to_owned());
        USER.remove();
        let me = registry::current().unwrap();
        to_main.send((me.clone(), "idle")).unwrap();
        from_main.recv().unwrap();
        {
            let _task = TaskScope::enter("outer");
            let _inner = TaskScope::enter("inner");
            to_main.send((me.clone(), "in task")).unwrap();
            from_main.recv().unwrap();
        }
        to_main.send((me, "done")).unwrap();
        from_main.recv().unwrap();
    });
    let (me, state) = from_worker.recv().unwrap();
    assert_eq!(state, "idle");
    assert!(!me.in_task());
    to_worker.send(()).unwrap();
    let (me, _) = from_worker.recv().unwrap();
    assert!(me.in_task());
    to_worker.send(()).unwrap();
    let (me, _) = from_worker.recv().unwrap();
    assert!(!me.in_task(), "both scopes closed");
    to_worker.send(()).unwrap();
    worker.join().unwrap();
}

/// A thread that first registers inside a task is seen inside it.
#[test]
fn a_thread_registering_inside_a_task_is_inside_it() {
    on_new_thread(|| {
        let _task = TaskScope::enter("first");
        USER.set("first bind".to_owned());
        assert!(registry::current().unwrap().in_task());
        USER.remove();
    });
}

static OVERWRITES: Mutex<Vec<(TaskId, Leftover)>> = Mutex::new(Vec::new());

fn record_overwrite(task: TaskId, leftover: &Leftover) {
    OVERWRITES.lock().unwrap().push((task, leftover.clone()));
}

fn with_overwrite_hook(f: impl FnOnce() + Send + 'static) -> Vec<(TaskId, Leftover)> {
    let _serial = serial(&HOOK_LOCK);
    OVERWRITES.lock().unwrap().clear();
    assert!(checkpoint::set_overwrite_hook(Some(record_overwrite)).is_none());
    // The hook hears of tasks the thread remembers only while a task-end
    // hook is installed (that is when ended tasks are recorded).
    checkpoint::set_task_end_hook(Some(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_new_thread(f)));
    checkpoint::set_task_end_hook(None);
    assert!(checkpoint::set_overwrite_hook(None).is_some());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    std::mem::take(&mut *OVERWRITES.lock().unwrap())
}

#[test]
fn a_set_in_a_task_over_an_earlier_tasks_value_is_told() {
    let told = with_overwrite_hook(|| {
        {
            let _task = TaskScope::enter("leaky");
            USER.set("left by leaky".to_owned());
            CACHE.set(1);
        }
        let _task = TaskScope::enter("next");
        // Replaces a value bound before this task began: told.
        assert_eq!(
            USER.set("next's".to_owned()).as_deref(),
            Some("left by leaky")
        );
        // Rebinding its own value, and per-thread keys: not told.
        USER.set("next's again".to_owned());
        CACHE.set(2);
        USER.remove();
    });
    assert_eq!(told.len(), 1, "{told:?}");
    let (task, leftover) = &told[0];
    assert_eq!(task.name, "next");
    assert_eq!(leftover.entry.key.name, Some("visibility::USER"));
    assert_eq!(leftover.bound_in.map(|t| t.name), Some("leaky"));
    assert!(leftover.value.is_none());
}

#[test]
fn a_set_outside_tasks_or_over_a_guarded_outer_value_is_not_told() {
    let told = with_overwrite_hook(|| {
        USER.set("outside".to_owned());
        USER.set("outside again".to_owned());
        // Bound outside any task, then a guard of the task shields it.
        let _task = TaskScope::enter("guarded");
        let guard = USER.guard();
        USER.set("inner".to_owned());
        drop(guard);
        assert_eq!(USER.get().as_deref(), Some("outside again"));
        USER.remove();
    });
    assert!(told.is_empty(), "{told:?}");
}

#[test]
fn a_bind_by_the_initializer_is_marked_until_the_next_set() {
    on_new_thread(|| {
        assert_eq!(DEPTH.get(), Some(7));
        let bound = checkpoint::bound();
        let entry = bound
            .iter()
            .find(|l| l.entry.key.name == Some("visibility::DEPTH"))
            .unwrap();
        assert!(entry.entry.by_initializer);
        DEPTH.set(8);
        let bound = checkpoint::bound();
        let entry = bound
            .iter()
            .find(|l| l.entry.key.name == Some("visibility::DEPTH"))
            .unwrap();
        assert!(!entry.entry.by_initializer);
        DEPTH.remove();
    });
}

#[test]
fn leftovers_name_the_innermost_task_they_were_bound_in() {
    let _serial = serial(&HOOK_LOCK);
    checkpoint::set_task_end_hook(Some(|_| {}));
    let bound_in = on_new_thread(|| {
        let _outer = TaskScope::enter("outer");
        {
            let _inner = TaskScope::enter("inner");
            {
                let _innermost = TaskScope::enter("innermost");
                USER.set("deep".to_owned());
            }
        }
        let bound_in = checkpoint::bound()[0].bound_in.map(|t| t.name);
        USER.remove();
        bound_in
    });
    checkpoint::set_task_end_hook(None);
    assert_eq!(bound_in, Some("innermost"));
}
