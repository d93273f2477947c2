//! The process gate: `Auditor::finish()`'s report gives the exit code, and
//! `TL_AUDIT` turns a service strict without a rebuild. The scenario runs in
//! a child process (this test binary, re-run with an environment variable),
//! which exits with the report's code.
#![cfg(not(miri))] // Miri cannot spawn processes.

use std::process::Command;

use tl_audit::{Auditor, Mode};
use tl_core::ThreadLocal;

static CONN: ThreadLocal<u32> = ThreadLocal::new().named("CONN");

const CHILD: &str = "TL_AUDIT_GATE_CHILD";

/// The "service": builder mode `sampled`, leaking (or not) in one task, its
/// events written to standard error.
#[test]
#[ignore = "the child process of exit_code_is_non_zero_only_in_deny_mode_with_findings"]
fn service() {
    let Some(scenario) = std::env::var_os(CHILD) else {
        return; // only meaningful in the child
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let auditor = Auditor::builder()
        .mode(Mode::Sampled)
        .manual()
        .install()
        .unwrap();
    tl_audit::task("handle", || {
        CONN.set(1);
        if scenario == "clean" {
            CONN.remove();
        }
    });
    let report = auditor.finish().unwrap();
    std::process::exit(i32::from(report.exit_status()));
}

/// Runs the service in a child process: its exit code, and whether it
/// logged a leak.
fn run(scenario: &str, tl_audit: Option<&str>) -> (i32, bool) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "service",
        "--ignored",
        "--test-threads=1",
        "--nocapture",
    ])
    .env(CHILD, scenario);
    match tl_audit {
        Some(mode) => cmd.env("TL_AUDIT", mode),
        None => cmd.env_remove("TL_AUDIT"),
    };
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap();
    // A child that did not run the service would exit 0 without a word.
    let ran = stderr.contains("THREAD-LOCAL AUDIT SUMMARY") || code != 0;
    assert!(ran, "the child did not run the service: {output:?}");
    (code, stderr.contains(tl_audit::LEAK_PREFIX))
}

#[test]
fn exit_code_is_non_zero_only_in_deny_mode_with_findings() {
    assert_eq!(
        run("leak", None),
        (0, true),
        "sampled reports but does not fail"
    );
    assert_eq!(run("leak", Some("full")), (0, true));
    assert_eq!(
        run("leak", Some("deny")),
        (1, true),
        "TL_AUDIT=deny makes the leak fatal"
    );
    assert_eq!(run("clean", Some("deny")), (0, false));
    // An invalid TL_AUDIT is an error from `install`: the child's unwrap panics (101).
    assert_eq!(run("leak", Some("dney")), (101, false));
}

#[test]
fn off_is_silent_and_exits_zero() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "service", "--ignored", "--nocapture"])
        .env(CHILD, "leak")
        .env("TL_AUDIT", "off");
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("THREAD-LOCAL"), "{stderr}");
    // The child ran the service (and not zero tests).
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("running 1 test"), "{stdout}");
}

#[test]
fn report_exit_status_in_process() {
    let _serial = tl_audit::testing::serial();
    let auditor = Auditor::builder()
        .mode(Mode::Deny)
        .ignore_env()
        .manual()
        .install()
        .unwrap();
    tl_audit::task("handle", || {
        CONN.set(1);
    });
    CONN.remove();
    let report = auditor.finish().unwrap();
    assert_eq!(report.exit_status(), 1);
    assert_eq!(
        format!("{:?}", report.exit_code()),
        format!("{:?}", std::process::ExitCode::from(1))
    );
}
