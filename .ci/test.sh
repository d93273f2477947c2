#!/usr/bin/env bash
# The README's test command, verbatim.
set -euxo pipefail

cargo test --workspace --all-features
