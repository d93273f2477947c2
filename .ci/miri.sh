#!/usr/bin/env bash
# tl-core's and tl-audit's tests under Miri (undefined behaviour, data races, leaks).
set -euxo pipefail

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    set +x
    echo "################################################################"
    echo "## SKIP: Miri is not installed for the nightly toolchain here. ##"
    echo "##       tl-core's unsafe code was NOT checked under Miri.     ##"
    echo "################################################################"
    exit 0
fi
cargo +nightly miri setup
cargo +nightly miri test -p tl-core
# tl-audit's tests that need no real time, processes or pools (the others are
# ignored or compiled out under `cfg(miri)`). `cli` includes the log reader's.
cargo +nightly miri test -p tl-audit --features cli
