"""`serve` runs its HTTP server under the guard of api/serving.py both ways it can: one process, and
`--workers 2`, whose spawned processes read the limits from the environment (real processes: the
server keeps running in the background); a busy port is refused at once (in this process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.runner import run_cli
from tests.helpers import free_port


def _cli(*args: str) -> list[str]:
    """The command line of one CLI command, run as an outside script runs it."""
    return [sys.executable, "-m", "messaging_whatsapp.cli", *args]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_cuts_a_silent_connection_after_the_header_timeout(
    fresh_sqlite_url: str, tmp_path: Path, workers: int
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": fresh_sqlite_url,
        "DATA_DIR": str(tmp_path),
        "HTTP_HEADER_TIMEOUT_SECONDS": "1",
    }
    env.pop("REDIS_URL", None)
    port = free_port()
    command = ["serve", "--role", "webhook", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(_cli(*command), env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as silent:
            # Held for good before the guard; now cut with a 408 after 1 s (6 s is a generous bound).
            silent.settimeout(6)
            answer = silent.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr


def test_serve_refuses_a_busy_port_before_printing_or_preparing_anything(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/engine.db", "DATA_DIR": str(tmp_path), "REDIS_URL": None}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = run_cli(["serve", "--demo", "--port", str(port)], env)
    assert refused.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in refused.stderr
    assert "demo tenant" not in refused.stderr
    assert not (tmp_path / "engine.db").exists()
