//! Task ends from `#[thread_local_scoped]` handlers (tl-macros, re-exported
//! by tl-core): keys in the list are cleaned up by the guards; any other
//! task-scoped value the handler leaves is reported, naming the handler.

mod common;

use common::{Worker, capture};
use tl_audit::FindingKind;
use tl_core::{ThreadLocal, ThreadLocalScoped, thread_local_scoped};

static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
static AUDIT_TRAIL: ThreadLocal<Vec<String>> = ThreadLocal::new().named("AUDIT_TRAIL");

#[derive(ThreadLocalScoped)]
struct OrderService {
    #[thread_local_scoped]
    conn: ThreadLocal<String>,
}

impl OrderService {
    #[thread_local_scoped(self, REQUEST_ID)]
    fn place_order(&self, request: u64) {
        REQUEST_ID.set(request);
        self.conn.set(format!("db-{request}"));
        // Not in the attribute's list: left behind.
        AUDIT_TRAIL.set(vec![format!("order {request}")]);
    }

    #[thread_local_scoped(self, REQUEST_ID, task = "orders::refund")]
    fn refund(&self, request: u64) {
        REQUEST_ID.set(request);
        self.conn.set(format!("db-{request}"));
    }
}

#[test]
fn values_a_handler_does_not_list_are_reported_with_its_name() {
    let _serial = tl_audit::testing::serial();
    let (dispatch, layer, _json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        let auditor = common::full_manual().install().unwrap();
        let worker = Worker::new("order-worker");
        let service = std::sync::Arc::new(OrderService {
            conn: ThreadLocal::new(),
        });
        let s = std::sync::Arc::clone(&service);
        worker.run(move || {
            s.refund(1);
            s.place_order(2);
        });
        let found = layer.findings();
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.kind(), Some(FindingKind::Unreleased));
        assert_eq!(f.key(), Some("AUDIT_TRAIL"));
        assert_eq!(f.task(), Some("macro_handlers::place_order"));
        // The task is declared where the handler's name is.
        let name_line = 1 + include_str!("macro_handlers.rs")
            .lines()
            .position(|l| l.contains("fn place_order"))
            .unwrap();
        let site = f.str_field("task_site").unwrap();
        assert!(
            site.ends_with(&format!("macro_handlers.rs:{name_line}:8")),
            "{site}"
        );
        assert!(
            f.message.contains(&format!(
                "task macro_handlers::place_order, entered at {site}, left AUDIT_TRAIL"
            )) && f.message.contains(
                "guard the function that sets it with #[thread_local_scoped(AUDIT_TRAIL)]"
            ),
            "{}",
            f.message
        );
        worker.run(|| drop(AUDIT_TRAIL.remove()));
        worker.stop();
        assert_eq!(auditor.finish().unwrap().counts().unreleased, 1);
    });
}

#[test]
fn assert_clean_passes_for_handlers_that_clean_up() {
    let service = OrderService {
        conn: ThreadLocal::new(),
    };
    tl_audit::assert_clean(|| {
        for request in 0..10 {
            service.refund(request);
        }
    });
}
