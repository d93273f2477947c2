//! The binary's JSON logs feed the real `tl-audit check`: a buggy run's log
//! fails it (exit 1), a fixed run's passes (exit 0). The check is tl-audit's
//! own binary, built here with cargo, not a re-implementation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Builds `tl-audit`'s binary (once per test process) and returns its path,
/// read from cargo's JSON messages rather than guessed from the target dir.
fn tl_audit_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let output = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "tl-audit",
                "--features",
                "cli",
                "--bin",
                "tl-audit",
            ])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(&workspace)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building tl-audit failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == "tl-audit")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the tl-audit executable")
    })
}

/// Runs the service binary with `args` and `--log-format json`, writing its
/// stdout to a file in `dir`; returns the file and the process's output.
fn json_run(dir: &Path, args: &[&str]) -> (PathBuf, Output) {
    let output = Command::new(env!("CARGO_BIN_EXE_orders-service"))
        .args(args)
        .args([
            "--requests",
            "40",
            "--concurrency",
            "4",
            "--log-format",
            "json",
        ])
        .env_remove("TL_AUDIT")
        .output()
        .expect("orders-service runs");
    let log = dir.join("run.jsonl");
    std::fs::write(&log, &output.stdout).expect("log written");
    (log, output)
}

/// Every stdout line is one JSON object: nothing else leaks onto stdout.
fn assert_only_json_lines(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.trim().is_empty(), "no log at all");
    for (i, line) in stdout.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line {} is not JSON ({e}): {line}", i + 1));
        assert!(value.is_object(), "line {}: {line}", i + 1);
    }
    // The human summary went to stderr instead.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pool connections stuck on threads"),
        "{stderr}"
    );
}

fn check(log: &Path) -> Output {
    Command::new(tl_audit_binary())
        .arg("check")
        .arg(log)
        .output()
        .expect("tl-audit runs")
}

#[test]
fn a_buggy_runs_json_log_fails_tl_audit_check() {
    let dir = tempfile::tempdir().unwrap();
    let (log, output) = json_run(dir.path(), &["--buggy"]);
    assert!(output.status.success(), "{output:?}");
    assert_only_json_lines(&output);

    let checked = check(&log);
    let table = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{table}\n{checked:?}");
    assert!(
        table.contains("unreleased") && table.contains("OrderService.conn"),
        "{table}"
    );
    assert!(table.contains("stranded"), "{table}");
}

#[test]
fn a_fixed_runs_json_log_passes_tl_audit_check() {
    let dir = tempfile::tempdir().unwrap();
    let (log, output) = json_run(dir.path(), &["--fixed"]);
    assert!(output.status.success(), "{output:?}");
    assert_only_json_lines(&output);

    let checked = check(&log);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{said}\n{checked:?}");
    assert!(
        said.contains("no thread-local leak finding events"),
        "{said}"
    );
}
