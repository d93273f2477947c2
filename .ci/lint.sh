#!/usr/bin/env bash
# Formatting, lints and docs: all must be clean.
set -euxo pipefail

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# Broken intra-doc links and other rustdoc warnings fail the build.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps
