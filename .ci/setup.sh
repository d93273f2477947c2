#!/usr/bin/env bash
# Installs the toolchain components the checks use.
set -euxo pipefail

rustup component add rustfmt clippy
# Miri runs on nightly only. If this machine cannot get it, miri.sh prints a
# loud SKIP instead of failing (see there); everything else needs stable only.
if rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal; then
    rustup component add miri rust-src --toolchain nightly || echo "miri component install failed" >&2
fi
