//! A secret stored in a thread-local never appears in any output: events
//! (JSON and collected), reports, summaries, the CLI's table.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Worker, capture};
#[cfg(feature = "cli")]
use tl_audit::check::{CheckOptions, check, render_table};
use tl_audit::{Auditor, Mode};
use tl_core::ThreadLocal;

const SECRET: &str = "tok_live_5f2b9c1e7a";

static TOKEN: ThreadLocal<String> = ThreadLocal::new().named("AUTH_TOKEN");

#[test]
fn a_secret_in_a_thread_local_never_reaches_any_output() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, json) = capture();
    let mut outputs = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = Auditor::builder()
            .mode(Mode::Deny)
            .ignore_env()
            .manual()
            .grace_period(Duration::ZERO)
            .max_bytes_per_thread(1)
            .install()
            .unwrap();
        let worker = Worker::new("secret-worker");
        // Unreleased: a task leaves the token set.
        worker.run(|| tl_audit::task("login", || drop(TOKEN.set(format!("Bearer {SECRET}")))));
        // Stranded: a dropped key's value holding the token, on an idle thread.
        let key = Arc::new(ThreadLocal::<String>::new().named("SESSION"));
        let k = Arc::clone(&key);
        worker.run(move || drop(k.set(SECRET.to_owned())));
        drop(key);
        // Growth: over one byte.
        let scan = auditor.scan_now().unwrap();
        assert_eq!(scan.findings.len(), 2, "stranded and growth");
        outputs.push(format!("{:?}", scan));
        outputs.extend(scan.findings.iter().map(ToString::to_string));
        let summary = auditor.summary().unwrap();
        outputs.push(summary.to_string());
        outputs.push(format!("{summary:?}"));
        worker.run(|| TOKEN.remove());
        worker.stop();
        let report = auditor.finish().unwrap();
        assert_eq!(report.counts().total(), 3);
        outputs.push(report.to_string());
        outputs.push(format!("{report:?}"));
    });
    let json = json.contents();
    assert!(
        json.contains("AUTH_TOKEN") && json.contains("SESSION"),
        "the leaks were reported"
    );
    // The CLI's table, with the `cli` feature.
    #[cfg(feature = "cli")]
    {
        let logged = check(json.as_bytes(), &CheckOptions::default()).unwrap();
        assert_eq!(logged.findings.len(), 3);
        outputs.push(render_table(&logged.findings));
    }
    outputs.push(format!("{:?}", layer.findings()));
    outputs.push(json);
    for output in &outputs {
        assert!(!output.contains(SECRET), "the secret leaked into: {output}");
    }
}
