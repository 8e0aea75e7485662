#!/usr/bin/env bash
# End-to-end tests of the stompede binary with real third-party STOMP clients:
# stomp.py + websocket-client (pytest, tests/python) and @stomp/stompjs + ws (node --test, tests/js).
#
# Run from anywhere; works from the repository root. Uses $STOMPEDE_BIN if set, otherwise builds
# `cargo build -p stompede` and uses target/debug/stompede (or $CARGO_TARGET_DIR/debug/stompede).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

if [[ -z "${STOMPEDE_BIN:-}" ]]; then
    echo "==> cargo build -p stompede"
    cargo build -p stompede
    STOMPEDE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/stompede"
fi
case "$STOMPEDE_BIN" in
    /*) ;;
    *) STOMPEDE_BIN="$root/$STOMPEDE_BIN" ;;
esac
if [[ ! -x "$STOMPEDE_BIN" ]]; then
    echo "stompede binary not found or not executable: $STOMPEDE_BIN" >&2
    exit 1
fi
export STOMPEDE_BIN
echo "==> using $STOMPEDE_BIN"

echo "==> python: stomp.py e2e tests"
python3 -m venv .venv-test
.venv-test/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
.venv-test/bin/python -m pytest -q tests/python

echo "==> js: @stomp/stompjs e2e tests"
npm ci --prefix tests/js --no-audit --no-fund
npm test --prefix tests/js
