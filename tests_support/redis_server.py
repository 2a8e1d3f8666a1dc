"""A real, throwaway ``redis-server`` for the workspace's tests.

One server per pytest session, started on a free loopback port in a temporary directory with
persistence off, and stopped when the session ends. Use it from a package's ``tests/conftest.py``::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the workspace root

    from tests_support import redis_server  # noqa: E402

    def pytest_configure(config):
        redis_server.register(config)

``register`` installs this module as a pytest plugin once, so every package shares one server.
Fixtures: ``redis_server`` (session: host, port, ``url``), ``redis_url`` (per test: the URL of
a freshly emptied server) and ``own_redis_server`` (a server of the test's own, which it may
``freeze()`` with SIGSTOP and ``thaw()``). Without a ``redis-server`` binary the tests are
skipped, unless ``LEXIGRAM_REQUIRE_REDIS`` is set, in which case they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PLUGIN_NAME = "lexigram-redis-server"
REQUIRE_ENV = "LEXIGRAM_REQUIRE_REDIS"
_STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RedisServer:
    """Where the test server listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0."""
        return f"redis://{self.host}:{self.port}/0"

    def command(self, *parts: str) -> bytes:
        """Send one inline command and return the raw first reply line (for setup and checks)."""
        with socket.create_connection((self.host, self.port), timeout=5) as conn:
            conn.sendall(" ".join(parts).encode() + b"\r\n")
            return conn.makefile("rb").readline().rstrip(b"\r\n")


def register(config: pytest.Config) -> None:
    """Install this module as a pytest plugin (once, however many conftests ask)."""
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(sys.modules[__name__], PLUGIN_NAME)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_ping(server: RedisServer, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            if server.command("PING") == b"+PONG":
                return True
        time.sleep(0.05)
    return False


def _start(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], RedisServer]:
    last_log = ""
    for _ in range(3):  # another process may grab the free port between probe and bind
        server = RedisServer("127.0.0.1", _free_port())
        log = directory / f"redis-{server.port}.log"
        process = subprocess.Popen(
            [
                binary,
                "--port", str(server.port),
                "--bind", server.host,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(directory),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if _wait_for_ping(server, process):
            return process, server
        _stop(process)
        last_log = log.read_text(errors="replace") if log.exists() else ""
    raise RuntimeError(f"redis-server did not start; last log:\n{last_log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason}, and {REQUIRE_ENV} is set")
        pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to make this a failure")
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running redis-server for the whole session."""
    process, server = _start(_binary(), tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        _stop(process)


@dataclass(frozen=True, slots=True)
class OwnRedisServer:
    """A redis-server of one test's own, which the test may freeze (SIGSTOP) and thaw."""

    server: RedisServer
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0."""
        return self.server.url

    def freeze(self) -> None:
        """Stop the process: connections stay open, nothing answers (a hung server)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the process run again."""
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[OwnRedisServer]:
    """A redis-server for this test alone (so freezing it disturbs no other test)."""
    process, server = _start(_binary(), tmp_path)
    own = OwnRedisServer(server, process)
    try:
        yield own
    finally:
        own.thaw()
        _stop(process)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, after emptying every database so each test starts clean."""
    assert redis_server.command("FLUSHALL") == b"+OK"
    return redis_server.url
