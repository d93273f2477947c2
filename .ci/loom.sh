#!/usr/bin/env bash
# Loom models of tl-core's cross-thread protocols (tl-core/tests/loom.rs).
set -euxo pipefail

# `--cfg loom` swaps tl-core's sync primitives for loom's (see tl-core/src/sync.rs);
# its own target directory keeps the normal build's artifacts intact.
export RUSTFLAGS="--cfg loom"
export CARGO_TARGET_DIR=target/loom
# Bounded preemptions keep the exploration exhaustive up to that bound and fast.
export LOOM_MAX_PREEMPTIONS=5
cargo test -p tl-core --test loom --release -- --nocapture
