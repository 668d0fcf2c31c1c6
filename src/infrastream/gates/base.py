"""What every automated check is given and what it returns.

A check examines one running application (`CheckSubject`: its spec, the endpoint its target
reports, the release and environment it runs in, its variables) and returns a `CheckResult`:
passed or not, one line a person can read, and the captured output, clipped and with every
secret value replaced by `***`. A failing check is a verdict, not an error: check functions
return a failed result instead of raising. Wall-clock timestamps are the caller's business;
a result carries only how long the check took.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infrastream.manifests import ApplicationSpec

OUTPUT_LIMIT = 64 * 1024
"""Characters of output a result keeps (the end, where test runners print their verdict)."""

BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


@dataclass(frozen=True)
class CheckSubject:
    """One running application that a check examines."""

    app: str
    spec: ApplicationSpec
    endpoint: str | None
    """Base URL the application answers on, as the target's AppStatus reports it."""
    version: str
    release: str
    environment: str
    workdir: Path
    """Directory that relative `integrationTests` paths resolve against."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Resolved variables, secret values included: never log or persist these values."""
    secret_names: frozenset[str] = frozenset()

    @property
    def secret_values(self) -> tuple[str, ...]:
        names = set(self.secret_names) | {e.name for e in self.spec.env if e.secret}
        return tuple(value for name, value in self.env.items() if name in names and value)

    def variables(self) -> dict[str, str]:
        """The application's variables: values from its spec, overridden by `env`."""
        values = {e.name: e.value for e in self.spec.env if e.value is not None and not e.secret}
        values.update(self.env)
        return values

    def infrastream_variables(self) -> dict[str, str]:
        return {"INFRASTREAM_APP": self.app, "INFRASTREAM_VERSION": self.version,
                "INFRASTREAM_RELEASE": self.release, "INFRASTREAM_ENVIRONMENT": self.environment}


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    summary: str
    """One line: what was checked and the verdict."""
    output: str = ""
    """Captured output, at most OUTPUT_LIMIT characters, secret values redacted."""
    duration: float = 0.0
    """Seconds the check took."""


def result(passed: bool, summary: str, output: str, *, secrets: Iterable[str] = (),
           duration: float = 0.0) -> CheckResult:
    """A CheckResult with its summary and output redacted, and the output clipped."""
    secrets = tuple(secrets)
    line = redact(summary, secrets).replace("\n", " ")
    return CheckResult(passed, line, clip(redact(output, secrets)), round(duration, 3))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***` (longest first)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last `limit` characters of `text`, saying how much was left out."""
    if len(text) <= limit:
        return text
    widest = f"[… {'9' * len(str(len(text)))} earlier characters omitted …]\n"
    kept = max(0, limit - len(widest))
    return f"[… {len(text) - kept} earlier characters omitted …]\n" + text[len(text) - kept:]


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of `text`, shortened to `limit` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def base_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The basics of `source` (default: `os.environ`) a child needs, without any virtualenv."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in BASE_VARIABLES if name in source}
    venv = source.get("VIRTUAL_ENV")
    if venv and "PATH" in env:
        venv_bin = os.path.join(venv, "bin")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env
