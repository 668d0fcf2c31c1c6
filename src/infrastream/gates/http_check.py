"""The `http` check: the application answers its health path with the expected status.

A fresh deployment may need a moment, so the check keeps asking until it gets the expected
status or its timeout runs out; what it saw on each attempt becomes the output. The path is
the check's own `path`, else the application's healthCheck path, else `/healthz`.
"""

from __future__ import annotations

import time

import httpx

from infrastream.manifests import format_duration, parse_duration
from infrastream.manifests.track import HttpCheck

from .base import CheckResult, CheckSubject, clip, result

TYPE_NAME = "http"
MAX_ATTEMPT_SECONDS = 5.0


def http_check(check: HttpCheck, subject: CheckSubject, *,
               interval: float = 0.5) -> CheckResult:
    """GET the subject's endpoint + path until it answers `check.expect_status` or times out."""
    secrets = subject.secret_values
    if not subject.endpoint:
        return result(False, f"{subject.app}: no endpoint to call (its target reports none)", "")
    health = subject.spec.health_check
    path = check.path or (health.path if health else None) or "/healthz"
    url = subject.endpoint.rstrip("/") + "/" + path.lstrip("/")
    timeout = float(parse_duration(check.timeout))
    started = time.monotonic()
    deadline = started + timeout
    attempts: list[str] = []
    last = ""
    with httpx.Client(follow_redirects=False) as client:
        while True:
            remaining = max(0.1, min(MAX_ATTEMPT_SECONDS, deadline - time.monotonic()))
            try:
                response = client.get(url, timeout=remaining)
            except httpx.HTTPError as exc:
                last = f"no answer ({type(exc).__name__}: {exc or 'no detail'})"
                attempts.append(f"GET {url}: {last}")
            else:
                last = f"answered {response.status_code}"
                attempts.append(f"GET {url}: {last}\n{clip(response.text, 4096)}")
                if response.status_code == check.expect_status:
                    summary = f"{subject.app}: GET {url} answered {response.status_code}"
                    return result(True, summary, attempts[-1], secrets=secrets,
                                  duration=time.monotonic() - started)
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(interval, deadline - now))
    summary = (f"{subject.app}: GET {url} {last}, expected {check.expect_status}, "
               f"for {format_duration(timeout)}")
    output = f"{len(attempts)} attempts; the last:\n{attempts[-1]}" if attempts else ""
    return result(False, summary, output, secrets=secrets,
                  duration=time.monotonic() - started)
