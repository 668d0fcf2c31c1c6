"""What every automated check is given and what it returns.

A check examines one running application (`CheckSubject`: its spec, the endpoint its target
reports, the release and environment it runs in, its variables) and returns a `CheckResult`:
passed or not, one line a person can read, and the captured output, clipped and with every
secret value replaced by `***`. A failing check is a verdict, not an error: check functions
return a failed result instead of raising. Wall-clock timestamps are the caller's business;
a result carries only how long the check took.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infrastream.launch import injected_variables, redact
from infrastream.manifests import ApplicationSpec

OUTPUT_LIMIT = 64 * 1024
"""Characters of output a result keeps (the end, where test runners print their verdict)."""



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
        return injected_variables(self.app, self.version, self.release, self.environment)


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
