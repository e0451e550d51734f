"""The command line run in this process, as a script runs it: the same app, arguments and environment
as `python -m messaging_whatsapp.cli`, its exit code, stdout and stderr (a new process per command
cost one to three seconds of start-up, most of the CLI tests' time).

What a process would not share with the next is reset around every command: the cached settings
(read again from the command's environment), the current directory and the loggers' levels and
handlers (some commands quieten httpx). The command runs in a thread
of its own, so that its `asyncio.run` works from async tests too. An exception the app lets escape
is printed to stderr as Python prints it, so that "no traceback" stays a real check. The real
process boundary (exit codes of a process, signals, the console script, servers left running) is
tested with real processes in test_process.py, test_serve.py and the scheduler tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from messaging_whatsapp.cli.app import app
from messaging_whatsapp.config import get_settings


@dataclass(frozen=True)
class Completed:
    """A command's outcome, named as `subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(args: Sequence[str], env: Mapping[str, str | None], cwd: Path | None = None) -> Completed:
    """Run one command with `env` over this process's environment (None removes a variable)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cli") as pool:
        result = pool.submit(_invoke, list(args), dict(env), cwd).result()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Completed(result.exit_code, result.stdout, stderr)


def process_env(env: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with `env` applied: for the commands still run as processes."""
    merged = {**os.environ, **env}
    return {name: value for name, value in merged.items() if value is not None}


def _invoke(args: list[str], env: dict[str, str | None], cwd: Path | None) -> Result:
    get_settings.cache_clear()
    try:
        with _working_directory(cwd), _logging_restored():
            return CliRunner().invoke(app, args, env=env, prog_name="messaging-whatsapp")
    finally:
        get_settings.cache_clear()


@contextlib.contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    before = Path.cwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    # The ones commands set levels on exist before they run, so that they are restored too.
    quietened = [logging.getLogger(name) for name in ("httpx", "alembic")]
    loggers = [logging.root, *quietened, *logging.root.manager.loggerDict.values()]
    saved = [
        (logger, logger.level, list(logger.handlers))
        for logger in loggers
        if isinstance(logger, logging.Logger)
    ]
    try:
        yield
    finally:
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
