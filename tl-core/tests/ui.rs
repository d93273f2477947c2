//! `tl_core::thread_local!` compiles every form std's `thread_local!`
//! accepts (one pass case per form), and rejects what std rejects.
#![cfg(not(miri))] // Miri cannot run the compiler.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
