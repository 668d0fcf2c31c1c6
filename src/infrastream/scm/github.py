"""The GitHub provider: github.com and GitHub Enterprise Server, over the REST API.

Results are reported as commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`) when
the connection has a token, or as check runs when it is configured as a GitHub App (app id,
private key, optionally the installation id): a check run can carry a summary and file
annotations, and one check run per commit and name is kept up to date (found with
`GET …/commits/{sha}/check-runs?check_name=…`, then `PATCH`ed), so a report is idempotent.

A required check is made with a repository ruleset of our own, named after the context and
branch (`POST`/`PUT /repos/{owner}/{repo}/rulesets`). A ruleset adds to whatever branch
protection or rulesets the repository already has instead of replacing them, which the
classic branch-protection `PUT` would do; rulesets exist on github.com and GHES 3.11+.
Without admin rights the answer is the exact steps for a person who has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from infrastream.domain.errors import PermanentError

from . import github_rulesets, github_webhooks
from .events import Delivery
from .git_tree import basic_header
from .github_app import GitHubApp
from .rest import RestClient
from .statuses import (
    DEFAULT_CONTEXT,
    Annotation,
    CommitStatus,
    Protection,
    ProtectionOutcome,
    StatusKind,
    StatusReceipt,
    StatusState,
    clip,
)

DESCRIPTION_LIMIT = 140
"""GitHub refuses commit-status descriptions longer than this."""
ANNOTATIONS_PER_REQUEST = 50
API_VERSION = "2022-11-28"
STATUS_STATES = {
    StatusState.PENDING: "pending", StatusState.RUNNING: "pending",
    StatusState.SUCCESS: "success", StatusState.FAILURE: "failure",
    StatusState.ERROR: "error", StatusState.CANCELED: "failure",
}
"""GitHub statuses know four states; a canceled run must still block the merge."""
CHECK_CONCLUSIONS = {
    StatusState.SUCCESS: "success", StatusState.FAILURE: "failure",
    StatusState.ERROR: "failure", StatusState.CANCELED: "cancelled",
}


class GitHubConfig(BaseModel):
    """A GitHub connection. Secret values never appear in repr, str or JSON dumps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["github"] = "github"
    base_url: str = Field("https://api.github.com", description=(
        "REST API root: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise"))
    token: SecretStr | None = Field(None, description="token with `repo:status` (classic) or "
                                    "Commit statuses: write + Pull requests: read")
    webhook_secret: SecretStr = Field(description="the secret set on the GitHub webhook")
    app_id: int | None = Field(None, description="GitHub App id: report check runs as the app")
    private_key: SecretStr | None = Field(None, description="the GitHub App's PEM private key")
    installation_id: int | None = Field(None, description="the App's installation; looked up "
                                        "per repository when absent")
    timeout: float = Field(10.0, gt=0, description="seconds per API call")

    @property
    def uses_app(self) -> bool:
        return self.app_id is not None and self.private_key is not None

    @property
    def web_url(self) -> str:
        """Where people click: https://github.com, or the Enterprise host."""
        base = self.base_url.rstrip("/")
        if httpx.URL(base).host == "api.github.com":
            return "https://github.com"
        return base.removesuffix("/api/v3")


class GitHubProvider:
    type_name = "github"

    def __init__(self, config: GitHubConfig, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if config.token is None and not config.uses_app:
            raise PermanentError("a GitHub connection needs a token or a GitHub App "
                                 "(app id and private key)")
        self.config = config
        self._rest = RestClient(
            config.base_url, host="GitHub", auth=lambda: {}, secrets=self._secrets,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
            timeout=config.timeout, transport=transport, clock=clock)
        self._app = GitHubApp(
            self._rest, app_id=config.app_id, private_key=config.private_key.get_secret_value(),
            installation_id=config.installation_id, clock=clock,
        ) if config.uses_app and config.app_id is not None and config.private_key else None

    def __repr__(self) -> str:
        return f"GitHubProvider(base_url={self.config.base_url!r}, app={self.config.app_id!r})"

    def close(self) -> None:
        self._rest.close()

    # -- webhooks -------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        return github_webhooks.parse(self.config.webhook_secret.get_secret_value(), headers, body)

    # -- statuses ---------------------------------------------------------------------------

    def report_status(self, repository: str, sha: str, status: CommitStatus) -> StatusReceipt:
        if self._app is not None:
            return self._check_run(repository, sha, status)
        state = STATUS_STATES[status.state]
        body: dict[str, Any] = {"state": state, "context": status.context,
                                "description": clip(status.description, DESCRIPTION_LIMIT)}
        if status.target_url:
            body["target_url"] = status.target_url
        answer = self._rest.json("POST", f"/repos/{_repo(repository)}/statuses/{sha}",
                                 json=body, headers=self._auth(repository))
        return StatusReceipt(StatusKind.COMMIT_STATUS, state, _id(answer), status.target_url)

    def _check_run(self, repository: str, sha: str, status: CommitStatus) -> StatusReceipt:
        repo = _repo(repository)
        headers = self._auth(repository)
        existing = self._rest.json(
            "GET", f"/repos/{repo}/commits/{sha}/check-runs",
            params={"check_name": status.context, "filter": "latest", "per_page": 1},
            headers=headers)
        runs = existing.get("check_runs") if isinstance(existing, dict) else None
        run_id = runs[0]["id"] if runs else None
        annotations = [_annotation(a) for a in status.annotations]
        batches = [annotations[i:i + ANNOTATIONS_PER_REQUEST]
                   for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)] or [[]]
        body = _check_body(status)
        for batch in batches:
            if batch:
                body["output"] = {**body["output"], "annotations": batch}
            if run_id is None:
                answer = self._rest.json("POST", f"/repos/{repo}/check-runs",
                                         json={"name": status.context, "head_sha": sha, **body},
                                         headers=headers)
                run_id = answer["id"]
            else:
                answer = self._rest.json("PATCH", f"/repos/{repo}/check-runs/{run_id}",
                                         json=body, headers=headers)
        state = body.get("conclusion") or body["status"]
        return StatusReceipt(StatusKind.CHECK_RUN, state, str(run_id),
                             answer.get("html_url") if isinstance(answer, dict) else None)

    # -- pull requests ----------------------------------------------------------------------

    def changed_paths(self, repository: str, number: int) -> tuple[str, ...]:
        paths: set[str] = set()
        headers = self._auth(repository)
        url: str | None = f"/repos/{_repo(repository)}/pulls/{number}/files"
        params: dict[str, str | int] | None = {"per_page": 100}
        while url is not None:
            response = self._rest.request("GET", url, params=params, headers=headers)
            for entry in response.json():
                paths.add(entry["filename"])
                if entry.get("previous_filename"):
                    paths.add(entry["previous_filename"])
            url, params = response.links.get("next", {}).get("url"), None
        return tuple(sorted(paths))

    # -- protection -------------------------------------------------------------------------

    def require_check(self, repository: str, branch: str,
                      context: str = DEFAULT_CONTEXT) -> Protection:
        repo = _repo(repository)
        headers = self._auth(repository)
        name = github_rulesets.name_for(context, branch)
        wanted = github_rulesets.wanted(name, branch, context,
                                        self._app.app_id if self._app is not None else None)
        listing = self._rest.request("GET", f"/repos/{repo}/rulesets",
                                     params={"per_page": 100, "includes_parents": "false"},
                                     headers=headers, accept=(403, 404))
        if listing.status_code in (403, 404):
            return self._needs_person(repository, branch, context, name, listing)
        ours = next((r for r in listing.json() if r.get("name") == name), None)
        if ours is None:
            answer = self._rest.request("POST", f"/repos/{repo}/rulesets", json=wanted,
                                        headers=headers, accept=(403, 404))
            if answer.status_code in (403, 404):
                return self._needs_person(repository, branch, context, name, answer)
            return Protection(ProtectionOutcome.APPLIED,
                              f"ruleset {name!r} now requires {context} on {branch}",
                              settings_url=self._settings_url(repository))
        current = self._rest.json("GET", f"/repos/{repo}/rulesets/{ours['id']}", headers=headers)
        if github_rulesets.satisfies(current, wanted):
            return Protection(ProtectionOutcome.ALREADY,
                              f"{context} is already required on {branch} (ruleset {name!r})",
                              settings_url=self._settings_url(repository))
        answer = self._rest.request("PUT", f"/repos/{repo}/rulesets/{ours['id']}", json=wanted,
                                    headers=headers, accept=(403, 404))
        if answer.status_code in (403, 404):
            return self._needs_person(repository, branch, context, name, answer)
        return Protection(ProtectionOutcome.APPLIED,
                          f"ruleset {name!r} was restored: it requires {context} on {branch}",
                          settings_url=self._settings_url(repository))

    def _needs_person(self, repository: str, branch: str, context: str, name: str,
                      response: httpx.Response) -> Protection:
        url = self._settings_url(repository)
        said = self._rest.message_of(response) or str(response.status_code)
        return Protection(ProtectionOutcome.NEEDS_PERSON,
                          f"not allowed to require {context} on {repository}:{branch}",
                          instructions=github_rulesets.manual_steps(
                              repository, branch, context, name, said, url),
                          settings_url=url)

    def _settings_url(self, repository: str) -> str:
        return f"{self.config.web_url}/{repository}/settings/rules"

    # -- plumbing ---------------------------------------------------------------------------

    def _auth(self, repository: str) -> dict[str, str]:
        if self._app is not None:
            return {"Authorization": f"Bearer {self._app.token_for(repository)}"}
        assert self.config.token is not None
        return {"Authorization": f"Bearer {self.config.token.get_secret_value()}"}

    def git_header(self, repository: str) -> str:
        """GitHub takes a token (or an App's installation token) as the password of user
        `x-access-token` for git over HTTPS."""
        token = (self._app.token_for(repository) if self._app is not None
                 else self.config.token.get_secret_value() if self.config.token else "")
        return basic_header("x-access-token", token)

    def _secrets(self) -> tuple[str, ...]:
        values = [s.get_secret_value() for s in
                  (self.config.token, self.config.webhook_secret, self.config.private_key) if s]
        if self._app is not None:
            values.extend(self._app.tokens())
        return tuple(values)


def _check_body(status: CommitStatus) -> dict[str, Any]:
    text = status.description or status.state.value
    body: dict[str, Any] = {"output": {"title": clip(status.title or text, 255),
                                       "summary": (status.summary or text)[:65535]}}
    if status.target_url:
        body["details_url"] = status.target_url
    if status.state.final:
        body["status"] = "completed"
        body["conclusion"] = CHECK_CONCLUSIONS[status.state]
    else:
        body["status"] = "queued" if status.state is StatusState.PENDING else "in_progress"
    return body


def _annotation(a: Annotation) -> dict[str, Any]:
    out: dict[str, Any] = {"path": a.path, "start_line": a.start_line,
                           "end_line": a.end_line or a.start_line,
                           "annotation_level": a.level.value, "message": a.message}
    same_line = out["end_line"] == a.start_line
    if same_line and a.start_column is not None:
        out["start_column"] = a.start_column
        out["end_column"] = a.end_column or a.start_column
    if a.title:
        out["title"] = a.title
    return out


def _repo(repository: str) -> str:
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        raise PermanentError(f"{repository!r} is not a GitHub repository name (owner/name)")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _id(answer: Any) -> str | None:
    return str(answer["id"]) if isinstance(answer, dict) and "id" in answer else None
