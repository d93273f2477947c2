//! Every way out of a guarded body cleans up: its end, an early `return`,
//! `?`, and a panic that unwinds; nested handlers restore the outer value.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tl_core::ThreadLocal;
use tl_core::thread_local_scoped;

static USER: ThreadLocal<String> = ThreadLocal::new();
static CONN: ThreadLocal<u32> = ThreadLocal::new().named("CONN");

#[thread_local_scoped(USER, CONN)]
fn normal_return(user: &str) -> usize {
    USER.set(user.to_owned());
    CONN.set(7);
    USER.with(|user| user.map_or(0, String::len))
}

#[test]
fn cleans_up_after_normal_return() {
    assert_eq!(normal_return("alice"), 5);
    assert!(!USER.is_set());
    assert!(!CONN.is_set());
}

#[thread_local_scoped(USER, CONN)]
fn early_return(leave_early: bool) -> u32 {
    CONN.set(1);
    if leave_early {
        return 1;
    }
    USER.set("late".to_owned());
    2
}

#[test]
fn cleans_up_after_early_return() {
    assert_eq!(early_return(true), 1);
    assert!(!CONN.is_set());
    assert_eq!(early_return(false), 2);
    assert!(!CONN.is_set());
    assert!(!USER.is_set());
}

#[thread_local_scoped(USER, CONN)]
fn question_mark(input: &str) -> Result<u32, std::num::ParseIntError> {
    USER.set(input.to_owned());
    let conn = input.parse::<u32>()?;
    CONN.set(conn);
    Ok(conn)
}

#[test]
fn cleans_up_after_question_mark() {
    question_mark("not a number").unwrap_err();
    assert!(!USER.is_set());
    assert_eq!(question_mark("42"), Ok(42));
    assert!(!USER.is_set());
    assert!(!CONN.is_set());
}

#[thread_local_scoped(USER, CONN)]
fn panics() {
    USER.set("doomed".to_owned());
    CONN.set(9);
    panic!("handler failed");
}

#[test]
fn cleans_up_after_panic() {
    let result = catch_unwind(panics);
    assert!(result.is_err());
    assert!(!USER.is_set());
    assert!(!CONN.is_set());
}

#[thread_local_scoped(USER)]
fn inner(rebind: bool) -> Option<String> {
    let seen = USER.get();
    if rebind {
        USER.set("inner".to_owned());
    } else {
        USER.remove();
    }
    seen
}

#[thread_local_scoped(USER)]
fn outer(rebind: bool) -> (Option<String>, Option<String>) {
    USER.set("outer".to_owned());
    let seen_inside = inner(rebind);
    (seen_inside, USER.get())
}

#[test]
fn nested_handlers_restore_the_outer_value() {
    for rebind in [true, false] {
        let (inside, after) = outer(rebind);
        assert_eq!(inside.as_deref(), Some("outer"));
        assert_eq!(after.as_deref(), Some("outer"));
        assert!(!USER.is_set());
    }
}

#[test]
fn nested_in_a_scope_restores_the_scopes_value_after_a_panic() {
    let _scope = USER.scope("request".to_owned());
    let result = catch_unwind(AssertUnwindSafe(|| {
        #[thread_local_scoped(USER)]
        fn rebinds_then_panics() {
            USER.set("clobbered".to_owned());
            panic!("after rebinding");
        }
        rebinds_then_panics();
    }));
    assert!(result.is_err());
    assert_eq!(USER.get().as_deref(), Some("request"));
}
