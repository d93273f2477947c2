//! `#[task_scoped]` marks a key task-scoped, anywhere among the attributes.
use std::cell::RefCell;

use tl_core::{Policy, thread_local};

thread_local! {
    #[task_scoped]
    static USER: RefCell<Option<String>> = RefCell::new(None);

    /// Documented, then marked.
    #[task_scoped]
    #[allow(dead_code)]
    pub static REQUEST: RefCell<u64> = const { RefCell::new(0) };

    #[allow(dead_code)]
    #[task_scoped]
    static TRACE: u64 = 0;

    static CACHE: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

fn main() {
    assert_eq!(USER.info().policy, Policy::TaskScoped);
    assert_eq!(REQUEST.info().policy, Policy::TaskScoped);
    assert_eq!(TRACE.info().policy, Policy::TaskScoped);
    assert_eq!(CACHE.info().policy, Policy::PerThread);
    let _user = USER.scope(RefCell::new(Some("alice".to_owned())));
}
