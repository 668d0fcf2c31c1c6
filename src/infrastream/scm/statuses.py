"""What we tell a Git host about a commit, and what it answers.

A `CommitStatus` is provider-neutral: one state out of six, a one-line description (the
blocker list or the verdict of a run), a link to the Portal page and a context that branch
protection can require. Each provider maps it to what its host offers: GitHub commit
statuses (four states, 140-character descriptions) or check runs (status + conclusion, with
a summary and annotations), GitLab commit statuses (five states, 255 characters).

`Protection` is the answer to "make this context a required check": applied, already in
place, or the exact steps a person with the right permissions has to take.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_CONTEXT = "infrastream/pre-release"
"""The context (GitHub) or name (GitLab) of the pre-release gate's status."""


class StatusState(StrEnum):
    PENDING = "pending"
    """Waiting: for the build, for the environment, in the queue."""
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    """The run finished and said no (tests failed, deploy unhealthy, superseded)."""
    ERROR = "error"
    """The run could not give a verdict (infrastructure trouble)."""
    CANCELED = "canceled"
    """The run was stopped (pull request closed, head superseded)."""

    @property
    def final(self) -> bool:
        return self not in (StatusState.PENDING, StatusState.RUNNING)


class AnnotationLevel(StrEnum):
    NOTICE = "notice"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class Annotation:
    """A remark on a file and line, shown in the pull request's diff (GitHub check runs)."""

    path: str
    start_line: int
    message: str
    level: AnnotationLevel = AnnotationLevel.FAILURE
    end_line: int | None = None
    start_column: int | None = None
    end_column: int | None = None
    title: str | None = None


@dataclass(frozen=True)
class CommitStatus:
    state: StatusState
    description: str = ""
    """One line; providers clip it to their host's limit (see `clip`)."""
    target_url: str | None = None
    """The Portal page of the run."""
    context: str = DEFAULT_CONTEXT
    ref: str | None = None
    """The branch the commit is tested for. GitLab attaches the status to that ref's
    pipeline; GitHub ignores it."""
    title: str | None = None
    """Check runs only: the headline of the output (defaults to the description)."""
    summary: str | None = None
    """Check runs only: Markdown shown on the check's page (defaults to the description)."""
    annotations: tuple[Annotation, ...] = ()
    """Check runs only: remarks on files and lines; commit statuses cannot carry them."""


def clip(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters, ending in `…` when it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class StatusKind(StrEnum):
    COMMIT_STATUS = "commit-status"
    CHECK_RUN = "check-run"


@dataclass(frozen=True)
class StatusReceipt:
    """What the host recorded: keep it beside the outbox entry for the deliveries list."""

    kind: StatusKind
    state: str
    """The host's own word for the state that was set (`failed` on GitLab, `completed` …)."""
    id: str | None = None
    """The host's id of the status or check run, when it returns one."""
    url: str | None = None


class ProtectionOutcome(StrEnum):
    APPLIED = "applied"
    """The context is now required: the provider changed the setting."""
    ALREADY = "already"
    """It was required before; nothing was changed."""
    NEEDS_PERSON = "needs-person"
    """The token may not change the setting; `instructions` say who must set what, where."""


@dataclass(frozen=True)
class Protection:
    outcome: ProtectionOutcome
    message: str
    """One line for the CLI: what was done, or why nothing could be."""
    instructions: str = ""
    """For `NEEDS_PERSON`: the exact steps, ready to print."""
    settings_url: str | None = None
    """The host's page where the setting lives."""

    @property
    def done(self) -> bool:
        return self.outcome is not ProtectionOutcome.NEEDS_PERSON
