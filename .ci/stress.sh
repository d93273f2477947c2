#!/usr/bin/env bash
# The stress test: too long for a debug `cargo test`, so it is ignored there
# and run here in release.
set -euxo pipefail

cargo test -p tl-tests --release --test stress -- --ignored --nocapture
