//! The binary's exit statuses: 0 for the story, 1 when a deny-mode auditor
//! finds the buggy variant's leaks, 2 for bad arguments (never a panic).

use std::process::{Command, Output};

fn orders_service(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orders-service"))
        .args(args)
        .env_remove("TL_AUDIT")
        .output()
        .expect("orders-service runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_story_runs_both_variants_and_exits_0() {
    let output = orders_service(&["--requests", "40", "--concurrency", "4"]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    // Text mode: the log, then the table with a column per variant.
    assert!(stdout.contains("THREAD-LOCAL LEAK:"), "{stdout}");
    let header = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("buggy"))
        .unwrap_or_else(|| panic!("no table in {stdout}"));
    assert!(header.trim_end().ends_with("fixed"), "{header}");
    assert!(stdout.contains("findings: stranded"), "{stdout}");
}

#[test]
fn deny_mode_makes_the_buggy_variant_fail_the_process() {
    let output = orders_service(&["--requests", "40", "--concurrency", "4", "--audit", "deny"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("ERROR"),
        "deny mode logs findings as errors: {stdout}"
    );
}

#[test]
fn deny_mode_passes_the_fixed_variant() {
    let output = orders_service(&["--fixed", "--requests", "40", "--audit", "deny"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--requests", "0"][..],
        &["--concurrency", "0"],
        &["--audit", "loud"],
        &["--log-format", "xml"],
        &["--buggy", "--fixed"],
        &["--port", "8080"],
    ] {
        let output = orders_service(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let stderr = text(&orders_service(&["--requests", "0"]).stderr);
    assert!(
        stderr.contains("invalid value '0' for '--requests <N>'"),
        "{stderr}"
    );
}
