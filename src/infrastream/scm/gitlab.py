"""The GitLab provider: gitlab.com and self-managed GitLab, over the REST API v4.

Results are commit statuses (`POST /projects/:id/statuses/:sha` with `state`, `name`,
`target_url`, `description`, `ref`); GitLab shows them as jobs of an external pipeline on
the commit. Projects are addressed by their URL-encoded path, so the repository name people
type (`group/sub/project`) is all a connection needs. GitLab refuses to set a status to the
state it already has ("Cannot transition status via :run from :running"); since the outbox
delivers at least once, that answer is taken as success.

A required check on GitLab is the project's merge check "Pipelines must succeed"
(`only_allow_merge_if_pipeline_succeeds`, plus `allow_merge_on_skipped_pipeline: false`): a
merge request cannot merge while our status is pending or failed, because the status is a
job of the head's pipeline. It is available on every tier. It applies to merge requests
into any branch of the project, which the result says. External status checks were not
chosen: they are Ultimate-only and time out after two minutes pending, while a pre-release
run waits for its environment for longer. Without the Maintainer role the answer is the
exact steps for a person who has it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from infrastream.domain.errors import PermanentError

from . import gitlab_webhooks
from .events import Delivery
from .git_tree import basic_header
from .rest import RestClient
from .statuses import (
    DEFAULT_CONTEXT,
    CommitStatus,
    Protection,
    ProtectionOutcome,
    StatusKind,
    StatusReceipt,
    StatusState,
    clip,
)

TEXT_LIMIT = 255
"""GitLab refuses a description, target URL or ref longer than this."""
STATES = {
    StatusState.PENDING: "pending", StatusState.RUNNING: "running",
    StatusState.SUCCESS: "success", StatusState.FAILURE: "failed",
    StatusState.ERROR: "failed", StatusState.CANCELED: "canceled",
}
SAME_STATE = re.compile(r"Cannot transition status via :\w+ from :(\w+)")


class GitLabConfig(BaseModel):
    """A GitLab connection. Secret values never appear in repr, str or JSON dumps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["gitlab"] = "gitlab"
    base_url: str = Field("https://gitlab.com", description=(
        "the GitLab instance, e.g. https://gitlab.example.com (the API is under /api/v4)"))
    token: SecretStr = Field(description="personal, group or project access token with the "
                             "`api` scope (Developer to report, Maintainer to protect)")
    webhook_secret: SecretStr = Field(description="the secret token set on the GitLab webhook")
    timeout: float = Field(10.0, gt=0, description="seconds per API call")

    @property
    def api_url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/api/v4") else base + "/api/v4"

    @property
    def web_url(self) -> str:
        return self.base_url.rstrip("/").removesuffix("/api/v4")


class GitLabProvider:
    type_name = "gitlab"

    def __init__(self, config: GitLabConfig, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._rest = RestClient(
            config.api_url, host="GitLab",
            auth=lambda: {"PRIVATE-TOKEN": config.token.get_secret_value()},
            secrets=lambda: (config.token.get_secret_value(),
                             config.webhook_secret.get_secret_value()),
            timeout=config.timeout, transport=transport, clock=clock)

    def __repr__(self) -> str:
        return f"GitLabProvider(base_url={self.config.base_url!r})"

    def close(self) -> None:
        self._rest.close()

    def git_header(self, repository: str) -> str:
        """GitLab takes an access token as the password of user `oauth2` for git over HTTPS."""
        return basic_header("oauth2", self.config.token.get_secret_value())

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        return gitlab_webhooks.parse(self.config.webhook_secret.get_secret_value(), headers, body)

    def report_status(self, repository: str, sha: str, status: CommitStatus) -> StatusReceipt:
        state = STATES[status.state]
        body: dict[str, Any] = {"state": state, "name": status.context,
                                "description": clip(status.description, TEXT_LIMIT)}
        if status.target_url and len(status.target_url) <= TEXT_LIMIT:
            body["target_url"] = status.target_url
        if status.ref:
            body["ref"] = status.ref
        response = self._rest.request("POST", f"/projects/{_project(repository)}/statuses/{sha}",
                                      json=body, accept=(400,))
        if response.status_code == 400:
            message = self._rest.message_of(response)
            same = SAME_STATE.search(message)
            if same and same.group(1) == state:
                return StatusReceipt(StatusKind.COMMIT_STATUS, state, None, status.target_url)
            raise PermanentError(f"GitLab answered POST /projects/…/statuses/{sha} with 400: "
                                 f"{message}", status=400)
        answer = response.json()
        return StatusReceipt(StatusKind.COMMIT_STATUS, str(answer.get("status", state)),
                             str(answer["id"]) if "id" in answer else None, status.target_url)

    def changed_paths(self, repository: str, number: int) -> tuple[str, ...]:
        paths: set[str] = set()
        for diff in self._rest.pages(
                f"/projects/{_project(repository)}/merge_requests/{number}/diffs",
                {"per_page": 100}):
            paths.add(diff["new_path"])
            paths.add(diff["old_path"])
        return tuple(sorted(paths))

    def require_check(self, repository: str, branch: str,
                      context: str = DEFAULT_CONTEXT) -> Protection:
        path = f"/projects/{_project(repository)}"
        project = self._rest.json("GET", path)
        settings_url = f"{project.get('web_url') or self.config.web_url + '/' + repository}" \
                       "/-/settings/merge_requests"
        scope = (f"merge requests into every branch of {repository} (GitLab's setting is "
                 f"per project), {branch} included")
        if project.get("only_allow_merge_if_pipeline_succeeds") and \
                not project.get("allow_merge_on_skipped_pipeline"):
            return Protection(ProtectionOutcome.ALREADY,
                              f"pipelines must already succeed for {scope}; {context} is a job "
                              "of those pipelines", settings_url=settings_url)
        answer = self._rest.request("PUT", path, json={
            "only_allow_merge_if_pipeline_succeeds": True,
            "allow_merge_on_skipped_pipeline": False}, accept=(403,))
        if answer.status_code == 403:
            said = self._rest.message_of(answer) or "403 Forbidden"
            steps = "\n".join([
                f"The token may not change the merge settings of {repository} "
                f"(GitLab said: {said}).",
                "A Maintainer or Owner of the project can require the check by hand:",
                f"  1. Open {settings_url}",
                "  2. Under Merge checks tick Pipelines must succeed, and leave Skipped "
                "pipelines are considered successful unticked.",
                "  3. Choose Save changes.",
                f"Then {context} (a job of the commit's pipeline) must pass before a merge "
                "request can merge.",
                "Or use a token of a Maintainer (scope `api`) and run `infrastream scm protect` "
                "again.",
            ])
            return Protection(ProtectionOutcome.NEEDS_PERSON,
                              f"not allowed to require pipelines to succeed on {repository}",
                              instructions=steps, settings_url=settings_url)
        return Protection(ProtectionOutcome.APPLIED,
                          f"pipelines must now succeed for {scope}; {context} is a job of "
                          "those pipelines", settings_url=settings_url)


def _project(repository: str) -> str:
    if not repository or repository.startswith("/") or repository.endswith("/"):
        raise PermanentError(f"{repository!r} is not a GitLab project path (group/project)")
    return quote(repository, safe="")
