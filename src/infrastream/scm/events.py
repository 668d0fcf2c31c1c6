"""What a Git host told us, in our own words: the events a webhook delivery can carry.

Providers turn GitHub's and GitLab's payloads into these frozen values so that nothing above
the `scm` layer ever reads a provider dict. Only what the pull-request gate and the
merge-to-development lane act on is kept: who, which repository, which commits, which
branches and, for pushes, which paths changed (monorepo `path` filtering). Events we do not
act on still arrive as a `Delivery`, with `event=None` and the reason they were ignored, so
that the service layer can record every delivery it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ZERO_SHA = "0" * 40
"""The `before`/`after` a push carries when a branch is created or deleted."""


class PullRequestAction(StrEnum):
    """What happened to a pull request (GitHub) or merge request (GitLab)."""

    OPENED = "opened"
    UPDATED = "updated"
    """New commits on the head branch: GitHub `synchronize`, GitLab `update` with `oldrev`."""
    REOPENED = "reopened"
    CLOSED = "closed"
    """Closed without merging."""
    MERGED = "merged"
    """Closed by merging (GitHub `closed` with `merged: true`, GitLab `merge`)."""


@dataclass(frozen=True)
class PullRequestEvent:
    action: PullRequestAction
    repository: str
    """The base repository: GitHub `owner/name`, GitLab project path `group/sub/project`."""
    number: int
    """GitHub pull request number, GitLab merge request IID (what people type after `!`)."""
    head_sha: str
    head_branch: str
    base_branch: str
    author: str
    """Login of the pull request's author. GitLab names the author only by id in its hooks,
    so for GitLab this is the user whose action caused the event."""
    title: str
    web_url: str
    actor: str
    """Login of the person whose action caused this event."""
    merged: bool = False
    merge_commit_sha: str | None = None
    """The commit the merge created on the base branch, when `merged` and the host says."""
    head_repository: str | None = None
    """Where the head branch lives; differs from `repository` for a pull request from a fork."""
    before_sha: str | None = None
    """The previous head, for `UPDATED` events when the host says."""

    @property
    def from_fork(self) -> bool:
        return self.head_repository is not None and self.head_repository != self.repository


@dataclass(frozen=True)
class PushEvent:
    repository: str
    ref: str
    """The full ref, e.g. `refs/heads/main` or `refs/tags/v1.2`."""
    before: str
    after: str
    pusher: str
    changed_paths: tuple[str, ...] = ()
    """Sorted union of the added, modified and removed paths of the pushed commits."""
    paths_complete: bool = True
    """False when the host listed only some of the commits (GitLab sends the newest 20):
    then `changed_paths` is a lower bound and a path filter should not trust an empty match."""
    default_branch: bool | None = None
    """Whether `ref` is the repository's default branch; None when the payload does not say."""
    commits: tuple[str, ...] = ()
    """Shas of the pushed commits as the host listed them, oldest first."""

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None

    @property
    def created(self) -> bool:
        return self.before == ZERO_SHA

    @property
    def deleted(self) -> bool:
        return self.after == ZERO_SHA


class MergeGroupAction(StrEnum):
    CHECKS_REQUESTED = "checks_requested"
    """GitHub's merge queue built a group and waits for the required checks on its head."""
    DESTROYED = "destroyed"
    """The group was merged, invalidated or dequeued: a run for it is no longer needed."""


@dataclass(frozen=True)
class MergeGroupEvent:
    """A GitHub merge queue group: the queue's temporary branch `head_ref` at `head_sha`
    holds the base plus the queued pull requests and needs the required checks."""

    action: MergeGroupAction
    repository: str
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str | None = None
    reason: str | None = None
    """For `DESTROYED`: `merged`, `invalidated` or `dequeued`."""


@dataclass(frozen=True)
class PingEvent:
    """Sent when a webhook is created: proof that the URL and the secret are right."""

    hook_id: int | None
    zen: str = ""
    repository: str | None = None


Event = PullRequestEvent | PushEvent | MergeGroupEvent | PingEvent


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery."""

    provider: str
    """The provider type: `github` or `gitlab`."""
    delivery_id: str
    """The host's id of this delivery (GitHub `X-GitHub-Delivery`, GitLab
    `X-Gitlab-Event-UUID`); the same id comes again when a delivery is redelivered, so it is
    the key to deduplicate on."""
    event_name: str
    """The host's event name as sent (`pull_request`, `Merge Request Hook`, …)."""
    event: Event | None
    ignored: str = ""
    """Why `event` is None: one line for the deliveries list (`issues events are not used`)."""

    @property
    def repository(self) -> str | None:
        return self.event.repository if self.event is not None else None
