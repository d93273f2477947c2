//! tokio integration on a real runtime.
#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::{capture, wait_for};
use tl_audit::FindingKind;
use tl_core::ThreadLocal;

static TENANT: ThreadLocal<String> = ThreadLocal::new().named("TENANT");
static LEAKED: ThreadLocal<String> = ThreadLocal::new().named("LEAKED");
static UNWRAPPED: ThreadLocal<u64> = ThreadLocal::new().named("UNWRAPPED");

#[test]
#[cfg_attr(miri, ignore = "a real runtime")]
fn blocking_tasks_and_thread_stops_are_audited() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    let auditor =
        tracing::dispatcher::with_default(&dispatch, || common::full_manual().install().unwrap());
    let runtime = tl_audit::tokio::instrument(&mut tokio::runtime::Builder::new_multi_thread())
        .worker_threads(1)
        .thread_name("tokio-test")
        .build()
        .unwrap();
    runtime.block_on(async {
        // Clean blocking tasks.
        for i in 0..50 {
            let n = tl_audit::tokio::spawn_blocking("clean_blocking", move || {
                let _tenant = TENANT.scope(format!("tenant-{i}"));
                TENANT.with(|t| t.map(String::len))
            })
            .await
            .unwrap();
            assert!(n.is_some());
        }
        assert!(layer.is_empty(), "{:?}", layer.findings());

        // A wrapped blocking task that leaves a value: reported at its end.
        tl_audit::tokio::spawn_blocking("leaky_blocking", || {
            LEAKED.set("connection".to_owned());
        })
        .await
        .unwrap();
        let found = layer.findings();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].task(), Some("leaky_blocking"));
        assert_eq!(found[0].thread_name(), Some("tokio-test"));

        // An unwrapped one: found when its thread stops.
        tokio::task::spawn_blocking(|| {
            UNWRAPPED.set(7);
        })
        .await
        .unwrap();
        assert_eq!(layer.len(), 1);
    });
    runtime.shutdown_timeout(Duration::from_secs(10));
    wait_for(|| layer.count(FindingKind::Unreleased) >= 2);
    let found = layer.findings();
    let at_stop: Vec<_> = found.iter().filter(|f| f.task() == Some("tokio")).collect();
    assert_eq!(at_stop.len(), 1, "{found:?}");
    assert_eq!(at_stop[0].key(), Some("UNWRAPPED"));
    assert_eq!(
        found.iter().filter(|f| f.key() == Some("LEAKED")).count(),
        1,
        "not reported twice"
    );
    auditor.shutdown().unwrap();
}
