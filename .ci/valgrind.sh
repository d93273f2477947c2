#!/usr/bin/env bash
# tl-core's and tl-audit's tests under valgrind memcheck: no definitely or
# indirectly lost bytes (scripts/valgrind-tests fails otherwise).
set -euxo pipefail

if ! command -v valgrind >/dev/null; then
    # Debian's package; CI runs as root, a developer machine may need sudo.
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq valgrind
fi
scripts/valgrind-tests -p tl-core -p tl-audit
