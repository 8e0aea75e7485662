#!/usr/bin/env bash
# Headless-Chromium end-to-end tests of SockJS + STOMP (tests/browser): sockjs-client and
# @stomp/stompjs, served by the binary from web/dist, over every SockJS transport, plus the chat
# demo over fallback transports.
#
# Installs what is missing on a fresh Debian machine: the `chromium` package (apt-get, needs root
# or sudo) when /usr/bin/chromium is absent, fonts-nanum and fonts-noto-color-emoji (Hangul and
# emoji in the screenshots), and tests/browser's npm packages (playwright-core,
# which drives that Chromium; it downloads no browser). Then builds web/dist
# (scripts/build-web.sh) and the binary (debug, --locked) unless $STOMPEDE_BIN is set, and runs
# the tests. Set CHROMIUM_BIN to use another Chromium. Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

step() { printf '\n==> %s\n' "$*"; }

export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
# Debian packages: Chromium itself (unless another is given), and fonts with Hangul and emoji
# so that the screenshots the tests save show the Korean UI as a person would see it.
packages=(fonts-nanum fonts-noto-color-emoji)
if [[ ! -x "$CHROMIUM_BIN" ]]; then
    if [[ "$CHROMIUM_BIN" != /usr/bin/chromium ]]; then
        echo "CHROMIUM_BIN=$CHROMIUM_BIN is not executable" >&2
        exit 1
    fi
    packages+=(chromium)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
"$CHROMIUM_BIN" --version 2>/dev/null || true

step "npm ci (tests/browser)"
npm ci --prefix tests/browser --no-audit --no-fund

step "web assets"
bash scripts/build-web.sh

if [[ -z "${STOMPEDE_BIN:-}" ]]; then
    step "cargo build -p stompede --locked"
    cargo build -p stompede --locked
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
step "browser tests against $STOMPEDE_BIN"
npm test --prefix tests/browser
