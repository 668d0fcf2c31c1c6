"""SCM providers: GitHub and GitLab behind one small interface (see `base`).

Webhook deliveries become our own events (`events`), results go back as commit statuses or
check runs (`statuses`), and `registry` builds a provider from a connection's settings.
Fakes of both hosts' HTTP APIs ship beside the real providers (`fake_github`, `fake_gitlab`)
for tests and benchmarks; they are imported from their modules, not from here.
"""

from .base import ScmProvider
from .events import (
    ZERO_SHA,
    Delivery,
    Event,
    MergeGroupAction,
    MergeGroupEvent,
    PingEvent,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
)
from .github import GitHubConfig, GitHubProvider
from .gitlab import GitLabConfig, GitLabProvider
from .registry import ProviderType, ScmRegistry
from .statuses import (
    DEFAULT_CONTEXT,
    Annotation,
    AnnotationLevel,
    CommitStatus,
    Protection,
    ProtectionOutcome,
    StatusKind,
    StatusReceipt,
    StatusState,
    clip,
)

__all__ = [
    "DEFAULT_CONTEXT",
    "ZERO_SHA",
    "Annotation",
    "AnnotationLevel",
    "CommitStatus",
    "Delivery",
    "Event",
    "GitHubConfig",
    "GitHubProvider",
    "GitLabConfig",
    "GitLabProvider",
    "MergeGroupAction",
    "MergeGroupEvent",
    "PingEvent",
    "Protection",
    "ProtectionOutcome",
    "ProviderType",
    "PullRequestAction",
    "PullRequestEvent",
    "PushEvent",
    "ScmProvider",
    "ScmRegistry",
    "StatusKind",
    "StatusReceipt",
    "StatusState",
    "clip",
]
