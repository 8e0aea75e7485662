"""Starts the SockJS test server (and, for the origin tests, the stompede binary).

The test server is $SOCKJS_TEST_SERVER, or target/debug/examples/sockjs_test_server under the
repository root; the binary is $STOMPEDE_BIN, or target/debug/stompede. Servers are started once
per session and per set of flags (`sockjs_server(*flags)`), on a free 127.0.0.1 port, are ready
once `GET /echo` answers the greeting, and are stopped with SIGTERM (then SIGKILL after a bounded
wait) at the end of the session. The log of every server a failing test used is attached to its
report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sockjs_client import get

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Flags of the server variants the tests use. Several tests share each variant.
FAST = ("--heartbeat", "1s", "--disconnect-delay", "1s")  # heartbeat and session expiry
SMALL = ("--max-message", "1024", "--client-library-url", "https://cdn.example/sockjs-1.6.1.js")


def binary(env_var: str, default: str, build_hint: str) -> Path:
    path = Path(os.environ.get(env_var) or default)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.fail(f"{path} not found: {build_hint} or set {env_var}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on 127.0.0.1, ready when `ready_path` answers `ready_body`."""

    def __init__(self, argv: list[str], log_path: Path, ready_path: str, ready_body: bytes,
                 env: dict | None = None):
        self.argv = argv
        self.log_path = log_path
        self.ready_path = ready_path
        self.ready_body = ready_body
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOMPEDE")}
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [*self.argv[:1], *[a.format(port=self.port) for a in self.argv[1:]]],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                )
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = f"exited with {self.proc.returncode}"
                    break
                try:
                    r = get(self.port, self.ready_path, timeout=1)
                    if r.status == 200 and r.body.strip() == self.ready_body.strip():
                        return self
                except (OSError, AssertionError):
                    pass
                time.sleep(0.05)
            else:
                last_error = f"{self.ready_path} not ready within {READY_TIMEOUT} s"
                self.stop()
        raise RuntimeError(f"{self.argv[0]} did not start: {last_error}\n{self.log()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        """Resident memory of the process (VmRSS of /proc/PID/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in getattr(item, "_servers", []):
            state = "running" if server.alive() else f"exited {server.proc.returncode}"
            report.sections.append(
                (f"server log: {' '.join(server.argv)} (port {server.port}, {state})",
                 server.log()[-20000:]))


@pytest.fixture(scope="session")
def _server_pool(tmp_path_factory):
    """Servers by (kind, flags, env, tag), started on first use, stopped at the end of the
    session. A tag gives a test a server of its own."""
    servers: dict[tuple, Server] = {}
    log_dir = tmp_path_factory.mktemp("server-logs")

    def get_or_start(kind: str, flags: tuple, env: tuple = (), tag: str = "") -> Server:
        key = (kind, flags, env, tag)
        server = servers.get(key)
        if server is not None and server.alive():
            return server
        log = log_dir / f"{kind}-{len(servers)}.log"
        if kind == "sockjs":
            exe = binary("SOCKJS_TEST_SERVER", "target/debug/examples/sockjs_test_server",
                         "build it (cargo build -p stompede-server --example sockjs_test_server)")
            server = Server([str(exe), "--bind", "127.0.0.1:{port}", *flags], log,
                            "/echo", b"Welcome to SockJS!\n")
        else:
            exe = binary("STOMPEDE_BIN", "target/debug/stompede",
                         "build it (cargo build -p stompede)")
            server = Server([str(exe), "serve", "--bind", "127.0.0.1:{port}", *flags], log,
                            "/healthz", b"ok", dict(env))
        servers[key] = server
        return server.start()

    yield get_or_start
    for server in servers.values():
        server.stop()


@pytest.fixture
def sockjs_server(request, _server_pool):
    """Factory: sockjs_server(*flags, tag="") → a running test server with those extra flags
    (shared with the other tests asking for the same flags and tag)."""
    request.node._servers = getattr(request.node, "_servers", [])

    def get_server(*flags: str, tag: str = "") -> Server:
        server = _server_pool("sockjs", tuple(flags), tag=tag)
        if server not in request.node._servers:
            request.node._servers.append(server)
        return server

    return get_server


@pytest.fixture
def stompede_server(request, _server_pool):
    """Factory: stompede_server(**env) → a running `stompede serve` with that environment."""
    request.node._servers = getattr(request.node, "_servers", [])

    def get_server(**env: str) -> Server:
        server = _server_pool("stompede", (), tuple(sorted(env.items())))
        if server not in request.node._servers:
            request.node._servers.append(server)
        return server

    return get_server


@pytest.fixture
def server(sockjs_server) -> Server:
    """The test server with default flags (stream limit 4096, heartbeat 25 s, delay 5 s)."""
    return sockjs_server()


@pytest.fixture
def port(server) -> int:
    return server.port


@pytest.fixture
def fast(sockjs_server) -> Server:
    """A test server with a 1 s heartbeat and a 1 s disconnect delay."""
    return sockjs_server(*FAST)


@pytest.fixture
def small(sockjs_server) -> Server:
    """A test server with --max-message 1024 and a custom client library URL."""
    return sockjs_server(*SMALL)
