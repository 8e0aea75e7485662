# Sourced by the bench-*.sh scripts: progress lines on stderr, and where to pin the server and
# the load tool. Pin only where there are two cores to pin to. Arrays, not a function, so that a
# server's PID taken from `$!` is the server's own (taskset execs it).

step() { printf '\n==> %s\n' "$*" >&2; }

if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    CORE0=(taskset -c 0)
    CORE1=(taskset -c 1)
    PINNED="server on core 0, stompede-loadgen on core 1"
else
    echo "taskset or a second core missing: running unpinned" >&2
    CORE0=()
    CORE1=()
    PINNED="unpinned"
fi
