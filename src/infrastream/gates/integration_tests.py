"""The `integration-tests` check: run an application's own test command against it.

The command (no shell) runs in `<workdir>/<integrationTests.workingDir>` with the
application's variables, `APP_URL` (the endpoint its target reports) and the
`INFRASTREAM_*` variables, in its own process group so a timeout kills everything it
started. Exit code 0 passes. The combined output is kept (its end, redacted) for people to
read; it goes to a temporary file rather than memory, so a chatty test cannot exhaust it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from typing import IO

from infrastream.launch import base_environment
from infrastream.manifests import format_duration, parse_duration
from infrastream.manifests.track import IntegrationTestsCheck

from .base import OUTPUT_LIMIT, CheckResult, CheckSubject, last_line, result

TYPE_NAME = "integration-tests"
DEFAULT_TIMEOUT = 300.0


def run_integration_tests(check: IntegrationTestsCheck | None, subject: CheckSubject, *,
                          default_timeout: float = DEFAULT_TIMEOUT,
                          base_env: dict[str, str] | None = None) -> CheckResult:
    """Run `subject`'s integrationTests command; passed when it exits with code 0."""
    tests = subject.spec.integration_tests
    secrets = subject.secret_values
    if tests is None:
        return result(True, f"{subject.app}: no integrationTests declared; nothing to run", "")
    timeout = _timeout(check, subject, default_timeout)
    cwd = subject.workdir / (tests.working_dir or "")
    env = base_environment(base_env)
    env.update(subject.variables())
    env.update(subject.infrastream_variables())
    if subject.endpoint:
        env["APP_URL"] = subject.endpoint
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(
                tests.command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return result(False, f"{subject.app}: cannot start integration tests "
                          f"`{tests.command[0]}` in {cwd}: {reason}", "", secrets=secrets)
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # the command and all it started
            process.wait()
        duration = time.monotonic() - started
        text = _read_end(output)
    if code is None:
        summary = f"{subject.app}: integration tests timed out after {format_duration(timeout)}"
        return result(False, summary, text, secrets=secrets, duration=duration)
    if code == 0:
        summary = f"{subject.app}: integration tests passed in {duration:.1f}s"
        return result(True, summary, text, secrets=secrets, duration=duration)
    verdict = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
    detail = last_line(text)
    summary = f"{subject.app}: integration tests failed ({verdict})" + (
        f": {detail}" if detail else "")
    return result(False, summary, text, secrets=secrets, duration=duration)


def _timeout(check: IntegrationTestsCheck | None, subject: CheckSubject,
             default: float) -> float:
    tests = subject.spec.integration_tests
    if check is not None and check.timeout:
        return float(parse_duration(check.timeout))
    if tests is not None and tests.timeout:
        return float(parse_duration(tests.timeout))
    return default


def _read_end(handle: IO[bytes]) -> str:
    """The end of the captured output (a little more than the result keeps)."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - 2 * OUTPUT_LIMIT))
    return handle.read().decode(errors="replace")
