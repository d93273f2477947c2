//! rayon integration on a real pool.
#![cfg(feature = "rayon")]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{capture, wait_for};
use rayon::prelude::*;
use tl_audit::FindingKind;
use tl_core::ThreadLocal;

static REQUEST: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST");
static LEAKED: ThreadLocal<String> = ThreadLocal::new().named("LEAKED");
static UNWRAPPED: ThreadLocal<u64> = ThreadLocal::new().named("UNWRAPPED");

#[test]
#[cfg_attr(miri, ignore = "a real thread pool")]
fn rayon_tasks_and_worker_exits_are_audited() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    let auditor = tracing::dispatcher::with_default(&dispatch, || {
        common::full_manual()
            .rate_limit(1000, Duration::from_secs(60))
            .install()
            .unwrap()
    });
    let pool = tl_audit::rayon::instrument(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("rayon-worker-{i}")),
    )
    .build()
    .unwrap();

    // Clean parallel tasks: nothing reported.
    pool.install(|| {
        (0..1000u64).into_par_iter().for_each(|i| {
            tl_audit::task("par_job", || {
                let _req = REQUEST.scope(i);
                assert_eq!(REQUEST.get(), Some(i));
            });
        });
    });
    assert!(layer.is_empty(), "{:?}", layer.findings());

    // A spawned task that leaves a value: reported when it returns.
    let (tx, rx) = mpsc::channel();
    tl_audit::rayon::spawn_in(&pool, "leaky_job", move || {
        LEAKED.set("connection".to_owned());
        tx.send(()).unwrap();
    });
    rx.recv().unwrap();
    wait_for(|| layer.count(FindingKind::Unreleased) == 1);
    let found = layer.findings();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].task(), Some("leaky_job"));
    assert!(found[0].thread_name().unwrap().starts_with("rayon-worker-"));
    assert!(
        found[0]
            .str_field("task_site")
            .unwrap()
            .contains("rayon.rs")
    );

    // Unwrapped work leaving values: found when the workers exit.
    pool.broadcast(|_| {
        UNWRAPPED.set(1);
    });
    assert_eq!(layer.len(), 1, "no task end, nothing reported yet");
    drop(pool);
    wait_for(|| layer.len() == 3);
    let found = layer.findings();
    assert_eq!(found.len(), 3, "{found:?}");
    let at_exit: Vec<_> = found[1..].iter().collect();
    for f in &at_exit {
        assert_eq!(f.key(), Some("UNWRAPPED"));
        assert_eq!(f.task(), Some("rayon"));
        assert_eq!(
            f.field("worker_stop"),
            Some(&tl_audit::FieldValue::Bool(true))
        );
        assert!(f.message.contains("pool thread"), "{}", f.message);
    }
    assert_ne!(at_exit[0].thread_id(), at_exit[1].thread_id());
    // LEAKED was reported at its task end, not again at exit.
    assert_eq!(
        found.iter().filter(|f| f.key() == Some("LEAKED")).count(),
        1
    );
    auditor.shutdown().unwrap();
}
