//! End to end, in process: the service on 127.0.0.1 with an ephemeral port,
//! real HTTP requests over loopback, findings captured from the auditor's
//! events by a scoped subscriber.
//!
//! The auditor slot, tl-core's task-end hook and the registry are
//! process-wide, so every test holds `tl_audit::testing::serial()`.

use std::time::Duration;

use indicatif::ProgressBar;
use orders_service::db::catalog;
use orders_service::load::{LoadGenerator, LoadPlan, Outcome, PlannedRequest, RequestKind};
use orders_service::order::{Order, UserId};
use orders_service::run::{RunOptions, RunOutcome, run_variant};
use orders_service::server::{Server, ServerConfig};
use orders_service::service::Variant;
use tl_audit::{FindingKind, FindingsLayer, Mode, RecordedFinding};
use tracing::{Dispatch, Level};
use tracing_subscriber::layer::SubscriberExt as _;

/// A small load: fast in a debug build on two cores, and still with a
/// failing tail of 8 orders (twice the concurrency) before the reload.
const PLAN: LoadPlan = LoadPlan {
    requests: 60,
    concurrency: 4,
};

/// A subscriber that collects finding events.
fn capture() -> (Dispatch, FindingsLayer) {
    let findings = FindingsLayer::new();
    let subscriber = tracing_subscriber::registry().with(findings.clone());
    (Dispatch::new(subscriber), findings)
}

/// Runs `variant` under a deny-mode auditor that ignores `TL_AUDIT`, with
/// short audit periods; returns the run and the finding events it logged.
fn run(variant: Variant) -> (RunOutcome, Vec<RecordedFinding>) {
    let mut options = RunOptions::new(variant, PLAN, Mode::Deny);
    options.audit.honor_env = false;
    options.audit.interval = Duration::from_millis(50);
    options.audit.grace = Duration::from_millis(300);
    let (dispatch, findings) = capture();
    let outcome = tracing::dispatcher::with_default(&dispatch, || {
        run_variant(&options, &ProgressBar::hidden())
    })
    .expect("the run completes");
    (outcome, findings.findings())
}

fn of_kind(found: &[RecordedFinding], kind: FindingKind) -> Vec<&RecordedFinding> {
    found.iter().filter(|f| f.kind() == Some(kind)).collect()
}

#[test]
fn buggy_variant_leaks_the_connection_and_strands_it_at_the_reload() {
    let _serial = tl_audit::testing::serial();
    let (outcome, found) = run(Variant::Buggy);

    let unreleased = of_kind(&found, FindingKind::Unreleased);
    let conn_left = unreleased
        .iter()
        .find(|f| f.key() == Some("OrderService.conn"))
        .unwrap_or_else(|| panic!("no unreleased OrderService.conn in {found:#?}"));
    assert!(
        conn_left
            .thread_name()
            .is_some_and(|name| name.starts_with("orders-pool-")),
        "{conn_left:#?}"
    );
    assert_eq!(conn_left.task(), Some("place_order"));
    assert!(
        conn_left.message.starts_with(tl_audit::LEAK_PREFIX),
        "{conn_left:#?}"
    );
    assert!(
        unreleased
            .iter()
            .any(|f| f.key() == Some("OrderService.current_user")),
        "{found:#?}"
    );

    // The reload killed the old instance's keys while idle pooled threads
    // held its values.
    let stranded = of_kind(&found, FindingKind::Stranded);
    let conn_stranded = stranded
        .iter()
        .find(|f| f.key() == Some("OrderService.conn"))
        .unwrap_or_else(|| panic!("no stranded OrderService.conn in {found:#?}"));
    assert!(
        conn_stranded
            .thread_name()
            .is_some_and(|name| name.starts_with("orders-pool-")),
        "{conn_stranded:#?}"
    );

    // Deny mode: every finding is an error, and the run's exit status is 1.
    assert!(found.iter().all(|f| f.level == Level::ERROR));
    assert_eq!(outcome.report.exit_status(), 1);
    let summary = &outcome.summary;
    assert_eq!(summary.exit_status, 1);
    assert!(summary.stuck_connections > 0, "{summary:#?}");
    assert_eq!(
        u64::try_from(stranded.len()).unwrap(),
        summary.findings.stranded,
        "every stranded finding is logged"
    );
    assert_eq!(summary.outcomes.total(), 60);
}

#[test]
fn fixed_variant_reports_nothing_and_never_drains_the_pool() {
    let _serial = tl_audit::testing::serial();
    let (outcome, found) = run(Variant::Fixed);

    assert!(found.is_empty(), "{found:#?}");
    assert!(outcome.report.is_clean(), "{}", outcome.report);
    assert_eq!(outcome.report.exit_status(), 0);
    let summary = &outcome.summary;
    assert_eq!(summary.stuck_connections, 0, "{summary:#?}");
    assert_eq!(summary.outcomes.pool_exhausted, 0, "{summary:#?}");
    assert_eq!(summary.ran_as_previous_user, 0, "{summary:#?}");
    // Each request got the answer its kind calls for.
    let expected = |kind| {
        (0..PLAN.requests)
            .filter(|&i| PLAN.kind_of(i) == kind)
            .count() as u64
    };
    assert_eq!(summary.outcomes.placed, expected(RequestKind::Good));
    assert_eq!(
        summary.outcomes.out_of_stock,
        expected(RequestKind::OutOfStock)
    );
    assert_eq!(
        summary.outcomes.unauthenticated,
        expected(RequestKind::Unauthenticated)
    );
    assert_eq!(summary.outcomes.other, 0);
}

/// The service's `GET /metrics`, scraped by a real HTTP client at the end of
/// each variant: the buggy variant's dead keys still hold bytes after the
/// reload (the stuck connections and users), the fixed one's hold none.
#[test]
fn metrics_scrape_shows_stranded_bytes_only_for_the_buggy_variant() {
    let _serial = tl_audit::testing::serial();
    let (buggy, _) = run(Variant::Buggy);
    assert!(buggy.summary.stranded_bytes > 0.0, "{:#?}", buggy.summary);
    assert!(buggy.summary.held_bytes > 0.0, "{:#?}", buggy.summary);
    let (fixed, _) = run(Variant::Fixed);
    assert_eq!(fixed.summary.stranded_bytes, 0.0, "{:#?}", fixed.summary);
    assert_eq!(fixed.summary.held_bytes, 0.0, "{:#?}", fixed.summary);

    // The text parses and carries every tl-audit metric the run produced.
    let server = Server::start(ServerConfig::new(Variant::Fixed)).expect("server");
    let client = LoadGenerator::new(server.addr()).expect("client");
    let scrape = client.scrape().expect("Prometheus text");
    for name in [
        "tl_audit_findings_total",
        "tl_audit_held_values",
        "tl_audit_held_bytes",
        "tl_audit_stranded_values",
        "tl_audit_stranded_bytes",
        "tl_audit_threads",
    ] {
        assert!(scrape.has(name), "{name} missing from {scrape:#?}");
    }
    drop(client);
    server.stop().expect("stop");
}

/// Alternates a failing order by alice and an order without a user, one at
/// a time, so both run on the same pooled thread (the blocking pool reuses
/// its one idle thread). Returns the answers to the orders without a user,
/// and the server's count of those placed as somebody.
fn failing_order_then_no_user(
    variant: Variant,
    rounds: usize,
) -> (Vec<Outcome>, Vec<Option<UserId>>, u64) {
    let server = Server::start(ServerConfig::new(variant)).expect("server starts");
    let client = LoadGenerator::new(server.addr()).expect("client");
    let alice = UserId("alice".to_owned());
    let mut outcomes = Vec::new();
    let mut placed_for = Vec::new();
    for _ in 0..rounds {
        let failing = client.place(&PlannedRequest {
            kind: RequestKind::OutOfStock,
            user: Some(alice.clone()),
            order: Order {
                product: catalog::SCARCE.to_owned(),
                quantity: catalog::SCARCE_STOCK + 1,
            },
        });
        assert_eq!(failing.outcome, Outcome::OutOfStock);
        // The answer leaves before the blocking thread is back among the
        // idle ones; give it that moment, or on a busy machine the next
        // order may start a new thread instead of reusing this one.
        std::thread::sleep(Duration::from_millis(20));
        let anonymous = client.place(&PlannedRequest {
            kind: RequestKind::Unauthenticated,
            user: None,
            order: Order {
                product: catalog::IN_STOCK[0].to_owned(),
                quantity: 1,
            },
        });
        outcomes.push(anonymous.outcome);
        placed_for.push(anonymous.receipt.map(|r| r.user));
        std::thread::sleep(Duration::from_millis(20));
    }
    let ran_as_previous_user = server.ran_as_previous_user();
    server.stop().expect("server stops");
    (outcomes, placed_for, ran_as_previous_user)
}

#[test]
fn without_a_user_a_request_never_runs_as_the_previous_user_when_fixed() {
    let _serial = tl_audit::testing::serial();
    let (outcomes, placed_for, ran_as) = failing_order_then_no_user(Variant::Fixed, 20);
    assert!(
        outcomes.iter().all(|&o| o == Outcome::Unauthenticated),
        "{outcomes:?}"
    );
    assert!(placed_for.iter().all(Option::is_none), "{placed_for:?}");
    assert_eq!(ran_as, 0);
}

/// The control for the test above: the same requests against the buggy
/// variant run as alice, so the fixed variant's pass is not luck.
#[test]
fn without_a_user_a_request_runs_as_the_previous_user_when_buggy() {
    let _serial = tl_audit::testing::serial();
    let (outcomes, placed_for, ran_as) = failing_order_then_no_user(Variant::Buggy, 20);
    assert!(
        outcomes.iter().all(|&o| o == Outcome::Placed),
        "{outcomes:?}"
    );
    let alice = UserId("alice".to_owned());
    assert!(
        placed_for.iter().all(|user| user.as_ref() == Some(&alice)),
        "{placed_for:?}"
    );
    assert_eq!(ran_as, 20);
}
