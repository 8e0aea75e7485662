#!/usr/bin/env bash
# Builds the browser assets the stompede binary serves from web/dist (config `[web] root`):
# `npm ci` in web/ (skipped when web/node_modules was installed from the current lock), then the
# SockJS and STOMP client bundles are copied to web/dist/vendor/, where the server answers
# `/vendor/sockjs.min.js` (the SockJS iframe page's `client_library_url`) and
# `/vendor/stomp.umd.min.js`. Never a CDN: the versions are the ones web/package-lock.json pins.
# Last, the chat app's own files (web/src: index.html, app.js, style.css, favicon.svg; plain
# files, no bundler) are copied to web/dist/.
#
# Idempotent; a second run with nothing changed does no network access and copies nothing.
# Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../web"

# (source in node_modules, file name in dist/vendor)
assets=(
    "sockjs-client/dist/sockjs.min.js sockjs.min.js"
    "@stomp/stompjs/bundles/stomp.umd.min.js stomp.umd.min.js"
)

# npm ci deletes and reinstalls node_modules every time; a stamp with the hash of package.json
# and the lock, written after a successful install, tells whether the tree still matches them.
stamp=node_modules/.stompede-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
installed=1
for asset in "${assets[@]}"; do
    read -r src _ <<<"$asset"
    [[ -f "node_modules/$src" ]] || installed=
done
if [[ -n "$installed" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "==> web: node_modules matches package-lock.json, npm ci skipped"
else
    echo "==> web: npm ci"
    npm ci --no-audit --no-fund
    echo "$want" >"$stamp"
fi

mkdir -p dist/vendor
for asset in "${assets[@]}"; do
    read -r src name <<<"$asset"
    src="node_modules/$src"
    dst="dist/vendor/$name"
    if [[ ! -f "$src" ]]; then
        echo "web: $src missing after npm ci" >&2
        exit 1
    fi
    # Copy only on change, so the file's mtime (and the server's Last-Modified/ETag) stays put.
    if ! cmp -s "$src" "$dst"; then
        cp "$src" "$dst.tmp"
        mv "$dst.tmp" "$dst"
        echo "==> web: $dst updated"
    fi
done
echo "==> web: dist/vendor ready"

# The chat app, file by file, copy-on-change like the bundles above.
shopt -s nullglob
for src in src/*; do
    [[ -f "$src" ]] || continue
    dst="dist/${src#src/}"
    if ! cmp -s "$src" "$dst"; then
        cp "$src" "$dst.tmp"
        mv "$dst.tmp" "$dst"
        echo "==> web: $dst updated"
    fi
done
echo "==> web: dist ready"
