//! Unreleased values: a task-scoped value still set when its task ends.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use common::{Worker, capture};
use tl_audit::{Auditor, FieldValue, FindingKind, LEAK_PREFIX};
use tl_core::ThreadLocal;
use tl_core::checkpoint::TaskScope;

static CONN: ThreadLocal<String> = ThreadLocal::new().named("CONN");
static CACHE: ThreadLocal<Vec<u8>> = ThreadLocal::new().named("SCRATCH").per_thread();
static SHOWN: ThreadLocal<u32> = ThreadLocal::new().named("SHOWN").reveal_in_reports();

fn full() -> Auditor {
    common::full_manual()
        .rate_limit(1000, Duration::from_secs(60))
        .install()
        .expect("install auditor")
}

#[test]
fn a_task_leaving_a_value_set_on_a_pooled_thread_is_reported() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = full();
        let worker = Worker::new("req-worker");
        #[rustfmt::skip]
        let line = worker.run(|| {
            tl_audit::task("handle_request", || { CONN.set("db-7".to_owned()); line!() })
        });
        let found = layer.findings();
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.kind(), Some(FindingKind::Unreleased));
        assert!(f.message.starts_with(LEAK_PREFIX));
        assert!(
            f.message.contains("task handle_request, entered at ")
                && f.message.contains(", left CONN (")
                && f.message
                    .contains("bind it with CONN.scope(..) instead of set(..) at ")
                && f.message.contains("#[thread_local_scoped(CONN)]")
                && !f.message.contains("on handle_request")
                && f.message.contains(".per_thread()"),
            "{}",
            f.message
        );
        assert_eq!(f.task(), Some("handle_request"));
        assert_eq!(f.thread_name(), Some("req-worker"));
        assert_eq!(f.key(), Some("CONN"));
        assert_eq!(f.value_type(), Some("alloc::string::String"));
        // The task call and the `set` share a line.
        assert!(
            f.set_site()
                .unwrap()
                .contains(&format!("unreleased.rs:{line}:"))
        );
        assert!(
            f.str_field("task_site")
                .unwrap()
                .contains(&format!("unreleased.rs:{line}:"))
        );
        assert_eq!(
            f.field("value"),
            None,
            "values are never shown without opt-in"
        );
        assert_eq!(f.field("panicking"), None);

        // The value is still there: the next task on the thread could read it.
        assert_eq!(worker.run(|| CONN.remove()), Some("db-7".to_owned()));
        worker.stop();
        assert_eq!(auditor.finish().unwrap().counts().unreleased, 1);
    });
}

#[test]
fn clean_tasks_per_thread_caches_and_earlier_values_are_not_reported() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = full();
        let worker = Worker::new("clean-worker");
        worker.run(|| {
            tl_audit::task("scoped", || {
                let _conn = CONN.scope("db".to_owned());
            });
            tl_audit::task("guarded", || {
                let _guard = CONN.guard();
                CONN.set("db".to_owned());
            });
            tl_audit::task("removed", || {
                CONN.set("db".to_owned());
                CONN.remove();
            });
            // A deliberate per-thread cache is never unreleased.
            tl_audit::task("cache", || {
                CACHE.set(vec![0; 64]);
            });
            // Bound before the task: not the task's doing.
            CONN.set("outer".to_owned());
            tl_audit::task("reader", || CONN.with(|c| assert!(c.is_some())));
            CONN.remove();
        });
        assert!(layer.is_empty(), "{:?}", layer.findings());
        worker.stop();
        assert!(auditor.finish().unwrap().is_clean());
    });
}

#[test]
fn task_scopes_as_generated_by_the_attribute_and_wrapped_closures() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = full();
        let worker = Worker::new("attr-worker");
        // What `#[thread_local_scoped]` expands to: a TaskScope per call.
        worker.run(|| {
            let _task = TaskScope::enter("orders::place_order");
            CONN.set("db-1".to_owned());
        });
        // A closure wrapped for a spawn-style API reports where it was wrapped.
        let wrap_line = line!() + 1;
        let job = tl_audit::wrap("nightly_job", || {
            CONN.set("db-2".to_owned());
        });
        worker.run(job);
        let found = layer.findings();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].task(), Some("orders::place_order"));
        assert_eq!(found[1].task(), Some("nightly_job"));
        let site = found[1].str_field("task_site").unwrap();
        assert!(
            site.contains(&format!("unreleased.rs:{wrap_line}:")),
            "{site}"
        );
        worker.run(|| CONN.remove());
        worker.stop();
        drop(auditor);
    });
}

#[test]
fn a_panicking_task_is_reported_as_such() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = full();
        let worker = Worker::new("panic-worker");
        worker.run(|| {
            let result = catch_unwind(AssertUnwindSafe(|| {
                tl_audit::task("explodes", || {
                    CONN.set("db".to_owned());
                    panic!("handler failed");
                })
            }));
            assert!(result.is_err());
            CONN.remove();
        });
        let found = layer.findings();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field("panicking"), Some(&FieldValue::Bool(true)));
        assert!(found[0].message.contains("when it panicked"));
        worker.stop();
        drop(auditor);
    });
}

#[test]
fn values_are_shown_only_for_keys_that_opt_in() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = full();
        tl_audit::task("reveal", || {
            SHOWN.set(1234);
            CONN.set("hidden".to_owned());
        });
        let found = layer.findings();
        assert_eq!(found.len(), 2);
        let shown = found.iter().find(|f| f.key() == Some("SHOWN")).unwrap();
        assert_eq!(shown.str_field("value"), Some("1234"));
        let hidden = found.iter().find(|f| f.key() == Some("CONN")).unwrap();
        assert_eq!(hidden.field("value"), None);
        let report = auditor.finish().unwrap();
        assert!(
            report
                .findings()
                .iter()
                .any(|f| f.value.as_deref() == Some("1234"))
        );
        SHOWN.remove();
        CONN.remove();
    });
}

#[test]
fn events_are_rate_limited_per_key_and_counted() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = common::full_manual()
            .rate_limit(2, Duration::from_secs(3600))
            .install()
            .unwrap();
        for _ in 0..5 {
            tl_audit::task("leaky", || {
                CONN.set("db".to_owned());
            });
        }
        CONN.remove();
        assert_eq!(
            layer.count(FindingKind::Unreleased),
            2,
            "two events per key per window"
        );
        let summary = auditor.summary().unwrap();
        assert_eq!(summary.findings.unreleased, 5);
        assert_eq!(summary.suppressed, 3);
        let report = auditor.finish().unwrap();
        assert_eq!(report.findings().len(), 5, "the report keeps every finding");
    });
}

/// A subscriber that panics on every finding.
struct Explosive;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Explosive {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "tl_audit" {
            panic!("subscriber failed");
        }
    }
}

struct BadDebug;

impl std::fmt::Debug for BadDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug failed")
    }
}

static BAD: ThreadLocal<BadDebug> = ThreadLocal::new().named("BAD").reveal_in_reports();

#[test]
fn user_code_panicking_inside_the_audit_of_a_panicking_task_does_not_abort() {
    use tracing_subscriber::layer::SubscriberExt;
    let _serial = tl_audit::testing::serial();
    let subscriber = tracing_subscriber::registry().with(Explosive);
    tracing::subscriber::with_default(subscriber, || {
        let auditor = full();
        for _ in 0..2 {
            let result = catch_unwind(AssertUnwindSafe(|| {
                tl_audit::task("doubly_unlucky", || {
                    CONN.set("db".to_owned());
                    BAD.set(BadDebug);
                    panic!("handler failed");
                })
            }));
            assert!(result.is_err());
            CONN.remove();
            BAD.remove();
        }
        drop(auditor);
    });
}
