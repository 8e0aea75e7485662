#!/usr/bin/env bash
# SockJS 0.3.3 protocol tests and the Autobahn WebSocket conformance run (tests/sockjs, pytest on
# raw sockets + websocket-client + kosoku) against the SockJS test server example, plus the origin
# checks of the real binary's /ws endpoint.
#
# Builds `sockjs_test_server` (example of stompede-server) and `stompede` (debug, --locked) unless
# $SOCKJS_TEST_SERVER and $STOMPEDE_BIN are set, ensures the Python venv .venv-test with
# tests/python/requirements.txt, then runs `pytest -q tests/sockjs` with any extra arguments given
# (e.g. `-m "not autobahn"` to skip the conformance run, `-k jsonp`). Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in
    /*) ;;
    *) target="$root/$target" ;;
esac

step() { printf '\n==> %s\n' "$*"; }

absolute() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$root/$1" ;;
    esac
}

if [[ -z "${SOCKJS_TEST_SERVER:-}" ]]; then
    step "cargo build -p stompede-server --example sockjs_test_server"
    cargo build -p stompede-server --example sockjs_test_server --locked
    SOCKJS_TEST_SERVER="$target/debug/examples/sockjs_test_server"
fi
if [[ -z "${STOMPEDE_BIN:-}" ]]; then
    step "cargo build -p stompede"
    cargo build -p stompede --locked
    STOMPEDE_BIN="$target/debug/stompede"
fi
SOCKJS_TEST_SERVER="$(absolute "$SOCKJS_TEST_SERVER")"
STOMPEDE_BIN="$(absolute "$STOMPEDE_BIN")"
for bin in "$SOCKJS_TEST_SERVER" "$STOMPEDE_BIN"; do
    if [[ ! -x "$bin" ]]; then
        echo "not found or not executable: $bin" >&2
        exit 1
    fi
done
export SOCKJS_TEST_SERVER STOMPEDE_BIN
echo "using $SOCKJS_TEST_SERVER and $STOMPEDE_BIN"

step "python venv (.venv-test)"
python3 -m venv .venv-test
.venv-test/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

step "pytest tests/sockjs"
# --durations shows what the time goes to (the Autobahn run is the longest test).
.venv-test/bin/python -m pytest -q -p no:cacheprovider --durations=5 tests/sockjs "$@"
