"""Starts the real stompede binary for each test.

The binary is $STOMPEDE_BIN, or target/debug/stompede under the repository root. Each test gets
its own server on a free 127.0.0.1 port; `@pytest.mark.server_env(KEY="value", ...)` adds
environment variables (e.g. STOMPEDE__HEARTBEAT__SEND="200ms") for that test's server. The server
is stopped with SIGTERM (then SIGKILL after a bounded wait) when the test ends, and its log is
attached to the report of a failing test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import Client, RawStomp

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def stompede_bin() -> Path:
    value = os.environ.get("STOMPEDE_BIN") or "target/debug/stompede"
    path = Path(value)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.fail(f"stompede binary not found at {path}: build it (cargo build -p stompede) "
                    f"or set STOMPEDE_BIN", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One stompede process."""

    def __init__(self, log_path: Path, env: dict | None = None):
        self.log_path = log_path
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.returncode: int | None = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOMPEDE")}
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"  # plain log lines in the failure report
        env.update(self.extra_env)
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [str(stompede_bin()), "serve", "--bind", f"127.0.0.1:{self.port}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                )
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = f"exited with {self.proc.returncode}"
                    break
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.port}/healthz", timeout=1
                    ) as resp:
                        if resp.status == 200 and resp.read().strip() == b"ok":
                            return self
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                time.sleep(0.05)
            else:
                last_error = f"/healthz not ok within {READY_TIMEOUT} s"
                self.kill()
            if "cannot listen" not in self.log():
                break
        raise RuntimeError(f"stompede did not start: {last_error}\n{self.log()}")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then wait up to `timeout` s; returns the exit code, or None if still running."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        if self.terminate() is None:
            self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "server_env(**env): extra environment variables for the test's stompede")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in getattr(item, "_stompede_servers", []):
            report.sections.append((f"stompede log (port {server.port})", server.log()[-20000:]))


@pytest.fixture
def start_server(request, tmp_path):
    """Factory: start_server(**env) starts one more stompede; all are stopped at teardown."""
    servers: list[Server] = []
    request.node._stompede_servers = servers

    def start(**env) -> Server:
        server = Server(tmp_path / f"stompede-{len(servers)}.log", env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(request, start_server) -> Server:
    """The test's stompede, with the environment of its `server_env` marker if any."""
    marker = request.node.get_closest_marker("server_env")
    return start_server(**(marker.kwargs if marker else {}))


@pytest.fixture
def port(server) -> int:
    return server.port


@pytest.fixture
def clients():
    """A list to register stomp.py Clients and RawStomp sockets in; all are closed at teardown."""
    registry: list = []
    yield registry
    for c in registry:
        if isinstance(c, (Client, RawStomp)):
            c.close()
