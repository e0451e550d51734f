"""Shared set-up for benchmarks: a scratch PostgreSQL database, server processes, wrk, the machine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import platform
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from messaging_whatsapp import migrate

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin_async(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _in_thread(function: Callable[..., object], *args: object) -> None:
    """Run set-up that starts its own event loop, also from inside a running one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function, *args).result()


def _admin(sql: str) -> None:
    _in_thread(asyncio.run, _admin_async(sql))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated PostgreSQL database that is dropped afterwards."""
    name = f"mw_bench_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        _in_thread(migrate.upgrade, url)
        yield url
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    """One line describing this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout.split("\n")[
        1:2
    ]
    total = memory[0].split()[1] + " GiB" if memory and memory[0] else "?"
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({model}), {total} RAM, Python {python}, {platform.system()}"


def cpu_probe() -> float:
    """Milliseconds this machine takes right now for a fixed pure-Python loop (10 million
    additions): shared machines speed up and slow down, and the figures move with them."""
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number
    return (time.perf_counter() - started) * 1000


def today() -> str:
    """The date in ISO form."""
    return datetime.now(UTC).date().isoformat()


@dataclass
class LoadResult:
    """What wrk measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(command: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[bytes]:
    """Start a server process and wait until `probe` answers 200."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


def wrk(url: str, script: Path, duration: int, connections: int, threads: int = 2) -> LoadResult:
    """Run wrk (two threads by default) with a Lua script for `duration` seconds."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    return _parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def wrk_until(
    url: str, script: Path, connections: int, args: Sequence[str], finished: Callable[[], bool]
) -> LoadResult:
    """Run wrk until `finished()` says the script's work is done (wrk reports on SIGINT).

    `args` reach the script's init(). Its requests per second count the whole run, idle end included.
    """
    command = ["wrk", "-t2", f"-c{connections}", "-d1h", "--latency", "-s", str(script), url, "--", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not finished():
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=30)
    if "Requests/sec" not in output:
        raise RuntimeError(f"wrk failed: {errors or output}")
    return _parse_wrk(output)


def _parse_wrk(output: str) -> LoadResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return LoadResult(rps, _percentile(output, "50%"), _percentile(output, "99%"), errors, total)


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
