#!/usr/bin/env bash
# The one command that runs the server (README.md): installs the browser libraries the binary
# serves (sockjs-client for SockJS's iframe transports, @stomp/stompjs; npm, skipped when already
# installed), then builds and runs `stompede serve` (release) with any extra arguments, e.g.
# `bash scripts/run.sh --bind 0.0.0.0:8080`. Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/build-web.sh
exec cargo run --release -p stompede -- serve "$@"
