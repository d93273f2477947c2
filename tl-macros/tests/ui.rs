//! Compile-time behaviour: `tests/ui/pass` must compile and run;
//! `tests/ui/fail` must fail with the reviewed `.stderr` next to each case
//! (regenerate with `TRYBUILD=overwrite cargo test -p tl-macros --test ui`,
//! then review the diff).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
