//! A service that depends on tl-audit with default features compiles no
//! JSON parser: `serde_json` comes only with the `cli` feature (issue 12).
//! Asks cargo itself, so a dependency that pulls it in indirectly (say,
//! `tracing-subscriber`'s `json` feature) is caught too.
#![cfg(not(miri))] // Miri cannot spawn processes.

use std::process::Command;

/// The names of tl-audit's normal (non-dev, non-build) dependencies,
/// direct and indirect, with `features` on top of the defaults.
fn normal_dependencies(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["tree", "--quiet", "-p", "tl-audit", "-e", "normal"])
        // One crate name per line, without the tree drawing.
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn default_features_compile_no_json_parser() {
    let deps = normal_dependencies(&[]);
    assert!(
        deps.iter().any(|d| d == "tracing"),
        "cargo tree lists dependencies: {deps:?}"
    );
    for json in ["serde_json", "tracing-serde"] {
        assert!(
            !deps.iter().any(|d| d == json),
            "tl-audit's default features pull in {json}: {deps:?}"
        );
    }
}

#[test]
fn the_cli_feature_brings_the_json_parser() {
    let deps = normal_dependencies(&["cli"]);
    assert!(
        deps.iter().any(|d| d == "serde_json"),
        "the test above would see serde_json: {deps:?}"
    );
}
