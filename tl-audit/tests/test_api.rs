//! The test API: `assert_clean` and `AuditScope`. Every test holds
//! `serial()` for its whole body (scopes take it too, reentrantly), so that
//! one test's leaks never happen during another's scope.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use common::Worker;
use tl_audit::FindingKind;
use tl_audit::testing::{AuditFailure, AuditScope};
use tl_core::ThreadLocal;

static CONN: ThreadLocal<String> = ThreadLocal::new().named("CONN");
static KEYS: [ThreadLocal<u8>; 3] = [ThreadLocal::new(), ThreadLocal::new(), ThreadLocal::new()];

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn assert_clean_passes_and_returns_the_result() {
    let _serial = tl_audit::testing::serial();
    let n = tl_audit::assert_clean(|| {
        let _conn = CONN.scope("db".to_owned());
        CONN.with(|c| c.map(String::len))
    });
    assert_eq!(n, Some(2));
}

#[test]
fn assert_clean_fails_listing_every_finding() {
    let _serial = tl_audit::testing::serial();
    let worker = Worker::new("api-worker");
    let result = catch_unwind(AssertUnwindSafe(|| {
        tl_audit::assert_clean(|| {
            CONN.set("left on the test thread".to_owned());
            worker.run(|| {
                tl_audit::task("background", || {
                    drop(CONN.set("left on the worker".to_owned()))
                })
            });
        })
    }));
    let message = panic_message(result.unwrap_err());
    assert!(
        message.starts_with("tl-audit: 2 thread-local leak(s) found"),
        "{message}"
    );
    assert!(
        message.contains("task background, entered at ")
            && message.contains("set on thread \"api-worker\""),
        "{message}"
    );
    assert!(
        message.contains("task tl_audit::assert_clean, entered at "),
        "{message}"
    );
    assert!(!message.contains("left on the"), "values are not shown");
    CONN.remove();
    worker.run(|| CONN.remove());
    worker.stop();
}

#[test]
fn scope_reports_values_stranded_during_it_but_not_before() {
    let _serial = tl_audit::testing::serial();
    let worker = Worker::new("scope-worker");
    let earlier = Arc::new(ThreadLocal::<u8>::new().named("EARLIER"));
    let e = Arc::clone(&earlier);
    worker.run(move || {
        e.set(1);
    });
    drop(earlier);

    let failure = AuditScope::new()
        .task_name("stranding_test")
        .run(|| {
            let key = Arc::new(ThreadLocal::<u8>::new().named("DURING"));
            let k = Arc::clone(&key);
            worker.run(move || {
                k.set(1);
            });
            drop(key);
        })
        .unwrap_err();
    let AuditFailure::Findings(report) = &failure else {
        panic!("{failure}")
    };
    assert_eq!(report.findings().len(), 1, "{report}");
    let f = &report.findings()[0];
    assert_eq!(f.kind, FindingKind::Stranded);
    assert_eq!(f.key_name(), "DURING");
    assert_eq!(report.exit_status(), 1);
    worker.run(|| CONN.with(|_| ()));
    worker.stop();
}

#[test]
fn scope_checks_growth_when_asked() {
    let _serial = tl_audit::testing::serial();
    let worker = Worker::new("growth-scope-worker");
    let failure = AuditScope::new()
        .max_entries_per_thread(2)
        .run(|| {
            worker.run(|| {
                KEYS.iter().for_each(|k| {
                    k.set(1);
                })
            })
        })
        .unwrap_err();
    assert!(
        failure.to_string().contains("holds 3 thread-local values"),
        "{failure}"
    );
    worker.run(|| {
        KEYS.iter().for_each(|k| {
            k.remove();
        })
    });
    worker.stop();
}

#[test]
fn scope_fails_cleanly_when_an_auditor_is_installed() {
    let _serial = tl_audit::testing::serial();
    let auditor = common::full_manual().install().unwrap();
    let failure = AuditScope::new().run(|| ()).unwrap_err();
    assert!(matches!(failure, AuditFailure::Install(_)), "{failure}");
    assert!(
        failure.to_string().contains("already installed"),
        "{failure}"
    );
    drop(auditor);
    tl_audit::assert_clean(|| ());
}

#[test]
fn a_panic_in_the_scope_propagates_and_leaves_nothing_installed() {
    let _serial = tl_audit::testing::serial();
    let result = catch_unwind(|| tl_audit::assert_clean(|| panic!("test body failed")));
    assert_eq!(panic_message(result.unwrap_err()), "test body failed");
    assert!(!tl_core::checkpoint::has_task_end_hook());
    tl_audit::assert_clean(|| ());
}
