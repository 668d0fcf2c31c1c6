"""A fake GitLab REST API v4 that follows GitLab's documentation.

It serves what the GitLab provider calls, from memory, over real HTTP on 127.0.0.1:

    POST /projects/:id/statuses/:sha             "Set the pipeline status of a commit"
    GET  /projects/:id/repository/commits/:sha/statuses
    GET  /projects/:id/merge_requests/:iid/diffs  paginated (page, per_page; Link, X-Next-Page)
    GET  /projects/:id                            with only_allow_merge_if_pipeline_succeeds
    PUT  /projects/:id                            Maintainer only

`:id` is a numeric id or the URL-encoded path (`group%2Fproject`). Requests are refused as
GitLab refuses them: 401 without a valid `PRIVATE-TOKEN` (or `Authorization: Bearer`), 404
for an unknown project, 400 for a state outside pending/running/success/failed/canceled/
skipped or a description, target URL or ref over 255 characters, and 400 "Cannot transition
status via :run from :running" when a status is set to the state it already has. Like the
GitHub fake it is a little stricter than the host: a parameter the documentation does not
list is a recorded violation and a 400.

    with FakeGitLab(projects=["group/shop"]) as gitlab:
        config = GitLabConfig(base_url=gitlab.base_url, token=gitlab.token, webhook_secret="s")
        gitlab.deny_protection = True     # PUT /projects/:id answers 403, as for a Developer
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from .fake_server import FakeHttpApi, Reply, Request

STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
TEXT_LIMIT = 255
STATUS_PARAMS = {"state", "ref", "name", "context", "target_url", "description", "coverage",
                 "pipeline_id"}
PROJECT_SETTINGS = {"only_allow_merge_if_pipeline_succeeds", "allow_merge_on_skipped_pipeline",
                    "only_allow_merge_if_all_discussions_are_resolved"}
"""The `PUT /projects/:id` attributes the fake knows (a small part of the documented list)."""
EVENTS = {"pending": "enqueue", "running": "run", "success": "succeed", "failed": "drop",
          "canceled": "cancel", "skipped": "skip"}
ROUTES = (
    ("POST", re.compile(r"^/projects/(?P<id>[^/]+)/statuses/(?P<sha>[0-9a-fA-F]+)$"), "status"),
    ("GET", re.compile(r"^/projects/(?P<id>[^/]+)/repository/commits/(?P<sha>[^/]+)/statuses$"),
     "statuses"),
    ("GET", re.compile(r"^/projects/(?P<id>[^/]+)/merge_requests/(?P<iid>\d+)/diffs$"), "diffs"),
    ("GET", re.compile(r"^/projects/(?P<id>[^/]+)$"), "get_project"),
    ("PUT", re.compile(r"^/projects/(?P<id>[^/]+)$"), "edit"),
)


@dataclass
class FakeProject:
    id: int
    path: str
    default_branch: str = "main"
    settings: dict[str, Any] = field(default_factory=lambda: {
        "only_allow_merge_if_pipeline_succeeds": False,
        "allow_merge_on_skipped_pipeline": False})
    statuses: list[dict[str, Any]] = field(default_factory=list)
    diffs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


class FakeGitLab(FakeHttpApi):
    def __init__(self, *, projects: Iterable[str] = (), token: str | None = None) -> None:
        super().__init__()
        self.token = token or "glpat-" + secrets.token_hex(10)
        self.deny_protection = False
        """Answer project edits 403, as GitLab does for a token below Maintainer."""
        self.projects: dict[str, FakeProject] = {}
        self._ids = itertools.count(501)
        for path in projects:
            self.add_project(path)

    @property
    def base_url(self) -> str:
        """The instance URL to configure the provider with (the API is below /api/v4)."""
        return self.root_url

    def add_project(self, path: str, *, default_branch: str = "main") -> FakeProject:
        with self._lock:
            if path not in self.projects:
                self.projects[path] = FakeProject(next(self._ids), path, default_branch)
            return self.projects[path]

    def set_merge_request_diffs(self, path: str, iid: int,
                                files: Iterable[str | tuple[str, str]]) -> None:
        """The files merge request `iid` changes: a path, or (new path, old path) for a rename."""
        diffs = []
        for item in files:
            new, old = (item, item) if isinstance(item, str) else item
            diffs.append({"old_path": old, "new_path": new, "a_mode": "100644",
                          "b_mode": "100644", "diff": "@@ -1 +1 @@\n-a\n+b\n",
                          "new_file": False, "renamed_file": new != old, "deleted_file": False})
        with self._lock:
            self.projects[path].diffs[iid] = diffs

    def statuses(self, path: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self.projects[path].statuses if s["sha"] == sha]

    def throttled_reply(self, status: int, retry_after: float) -> Reply:
        return Reply(status, {"message": "Retry later"}, {"Retry-After": str(int(retry_after))})

    # -- serving ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith("/api/v4/"):
            return _error(404, "404 Not Found", ["not below /api/v4"])
        path = request.path[len("/api/v4"):]
        token = request.headers.get("private-token") or \
            request.headers.get("authorization", "").removeprefix("Bearer ")
        if not token or not secrets.compare_digest(token, self.token):
            return _error(401, "401 Unauthorized")
        for method, pattern, name in ROUTES:
            found = pattern.match(path)
            if found and method == request.method:
                with self._lock:
                    project = self._find(unquote(found["id"]))
                    if project is None:
                        return _error(404, "404 Project Not Found", credential="token")
                    reply = getattr(self, f"_{name}")(project, found.groupdict(), request)
                return Reply(reply.status, reply.body, reply.headers, reply.violations, "token")
        return _error(404, "404 Not Found", ["no such endpoint in the fake GitLab"], "token")

    def _find(self, key: str) -> FakeProject | None:
        if key.isdigit():
            return next((p for p in self.projects.values() if p.id == int(key)), None)
        return self.projects.get(key)

    def _status(self, project: FakeProject, p: dict[str, str], request: Request) -> Reply:
        params = _params(request)
        unknown = sorted(set(params) - STATUS_PARAMS)
        if unknown:
            return _error(400, f"unknown parameters: {', '.join(unknown)}",
                          [f"{name!r} is not a documented attribute" for name in unknown])
        state = params.get("state")
        if state is None:
            return _error(400, "state is missing", ["state is missing"], key="error")
        if state not in STATES:
            return _error(400, "state does not have a valid value",
                          [f"state {state!r} is not one of {', '.join(STATES)}"], key="error")
        for attr in ("description", "target_url", "ref"):
            if len(str(params.get(attr) or "")) > TEXT_LIMIT:
                return Reply(400, {"message": {attr: [
                    f"is too long (maximum is {TEXT_LIMIT} characters)"]}},
                    violations=(f"{attr} is longer than {TEXT_LIMIT} characters",))
        name = str(params.get("name") or params.get("context") or "default")
        ref = params.get("ref") or project.default_branch
        current = next((s for s in reversed(project.statuses)
                        if s["sha"] == p["sha"] and s["name"] == name and s["ref"] == ref), None)
        if current is not None and current["status"] in ("pending", "running"):
            if not _can_transition(current["status"], state):
                event = EVENTS[state]
                return Reply(400, {"message": f"Cannot transition status via :{event} from "
                                   f":{current['status']} (Reason(s): Status cannot transition "
                                   f"via \"{event}\")"})
            current.update(status=state, description=params.get("description"),
                           target_url=params.get("target_url"), finished_at=_now())
            return Reply(201, dict(current))
        status = {"id": next(self._ids), "sha": p["sha"], "ref": ref, "status": state,
                  "name": name, "description": params.get("description"),
                  "target_url": params.get("target_url"), "created_at": _now(),
                  "allow_failure": False}
        project.statuses.append(status)
        return Reply(201, dict(status))

    def _statuses(self, project: FakeProject, p: dict[str, str], request: Request) -> Reply:
        return Reply(200, [dict(s) for s in project.statuses if s["sha"] == p["sha"]])

    def _diffs(self, project: FakeProject, p: dict[str, str], request: Request) -> Reply:
        diffs = project.diffs.get(int(p["iid"]))
        if diffs is None:
            return _error(404, "404 Not found")
        per_page = min(int(request.param("per_page") or 20), 100)
        page = max(int(request.param("page") or 1), 1)
        total_pages = max(1, -(-len(diffs) // per_page))
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(diffs)),
                   "X-Total-Pages": str(total_pages),
                   "X-Next-Page": str(page + 1) if page < total_pages else ""}
        if page < total_pages:
            query = urlencode({"page": page + 1, "per_page": per_page})
            headers["Link"] = f'<{self.root_url}{request.path}?{query}>; rel="next"'
        return Reply(200, diffs[(page - 1) * per_page: page * per_page], headers)

    def _project_reply(self, project: FakeProject) -> dict[str, Any]:
        return {"id": project.id, "path_with_namespace": project.path,
                "web_url": f"{self.root_url}/{project.path}",
                "default_branch": project.default_branch, **project.settings}

    def _get_project(self, project: FakeProject, p: dict[str, str], request: Request) -> Reply:
        return Reply(200, self._project_reply(project))

    def _edit(self, project: FakeProject, p: dict[str, str], request: Request) -> Reply:
        if self.deny_protection:
            return _error(403, "403 Forbidden")
        params = _params(request)
        unknown = sorted(set(params) - PROJECT_SETTINGS)
        if unknown:
            return _error(400, f"unknown parameters: {', '.join(unknown)}",
                          [f"{name!r} is not an attribute the fake knows" for name in unknown])
        project.settings.update(params)
        return Reply(200, self._project_reply(project))


def _can_transition(current: str, wanted: str) -> bool:
    """GitLab's status machine for a live status: pending -> running -> a final state."""
    if wanted == current:
        return False
    return not (current == "running" and wanted == "pending")


def _params(request: Request) -> dict[str, Any]:
    """Attributes from the JSON body, a form body or the query string, as GitLab reads them."""
    params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
    content_type = request.headers.get("content-type", "")
    if request.body and "json" in content_type:
        body = request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.body:
        params.update({k: v[-1] for k, v in parse_qs(request.body.decode()).items()})
    return params


def _error(status: int, message: str, violations: Iterable[str] = (),
           credential: str | None = None, *, key: str = "message") -> Reply:
    return Reply(status, {key: message}, violations=tuple(violations), credential=credential)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
