"""A fake GitHub REST API that holds every request to GitHub's official description.

It serves the calls the GitHub provider makes (commit statuses, check runs, pull request
files, repository rulesets, GitHub App installation tokens) from memory, over real HTTP on
127.0.0.1. Before answering, every request is checked like GitHub would check it: known
path and method, described parameters of the right type, and a JSON body valid against the
operation's schema in `@octokit/openapi` (see `openapi_contract`); a violation is answered
422 as GitHub does and recorded (`fake.violations`). Credentials are checked too: the token,
the App's RS256 JWT (verified with the App's public key) or an installation token it issued.

    with FakeGitHub(repositories=["octo-org/shop"]) as github:
        config = GitHubConfig(base_url=github.base_url, token=github.token, webhook_secret="s")
        ...
        github.statuses("octo-org/shop", sha)      # what was reported
        github.deny_protection = True              # rulesets answer 403, as for a non-admin
        key_pem = github.enable_app()              # then report check runs as the App

`prefix="/api/v3"` serves it the way GitHub Enterprise Server does.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .fake_server import FakeHttpApi, Reply, Request
from .openapi_contract import OpenApiDescription, Operation

DOCS = "https://docs.github.com/rest"
STATUS_DESCRIPTION_LIMIT = 140
APP_OPERATIONS = ("apps/create-installation-access-token", "apps/get-repo-installation")
PROTECTION_OPERATIONS = ("repos/create-repo-ruleset", "repos/update-repo-ruleset")


@dataclass
class FakeRepository:
    full_name: str
    default_branch: str = "main"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    rulesets: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class FakeApp:
    app_id: int
    installation_id: int
    public_key: Any
    tokens: dict[str, float] = field(default_factory=dict)


class FakeGitHub(FakeHttpApi):
    def __init__(self, *, repositories: Iterable[str] = (), prefix: str = "",
                 token: str | None = None, description: Path | None = None) -> None:
        super().__init__()
        self.description = OpenApiDescription.load(description)
        self.prefix = prefix.rstrip("/")
        self.token = token or "ghp_" + secrets.token_hex(18)
        self.deny_protection = False
        """Answer ruleset changes 403, as GitHub does for a token without admin rights."""
        self.repositories: dict[str, FakeRepository] = {}
        self.app: FakeApp | None = None
        self._ids = itertools.count(1001)
        for name in repositories:
            self.add_repository(name)

    @property
    def base_url(self) -> str:
        """The API root to configure the provider with."""
        return self.root_url + self.prefix

    # -- test set-up and inspection ---------------------------------------------------------

    def add_repository(self, full_name: str, *, default_branch: str = "main") -> FakeRepository:
        with self._lock:
            return self.repositories.setdefault(full_name,
                                                FakeRepository(full_name, default_branch))

    def set_pull_request_files(self, repository: str, number: int,
                               files: Iterable[str | tuple[str, str]]) -> None:
        """The files pull request `number` changes: a path, or (new path, old path) for a rename."""
        entries = []
        for item in files:
            new, old = (item, None) if isinstance(item, str) else item
            entry: dict[str, Any] = {"sha": secrets.token_hex(20), "filename": new,
                                     "status": "renamed" if old else "modified",
                                     "additions": 1, "deletions": 1, "changes": 2}
            if old:
                entry["previous_filename"] = old
            entries.append(entry)
        with self._lock:
            self.repositories[repository].files[number] = entries

    def enable_app(self, *, app_id: int = 4242, installation_id: int = 77) -> str:
        """Make this a GitHub App's world; returns the App's private key (PEM)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app = FakeApp(app_id, installation_id, key.public_key())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    def statuses(self, repository: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self.repositories[repository].statuses if s["sha"] == sha]

    def check_runs(self, repository: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.repositories[repository].check_runs.values()
                    if r["head_sha"] == sha]

    def rulesets(self, repository: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.repositories[repository].rulesets.values()]

    # -- serving ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(self.prefix + "/"):
            return _error(404, "Not Found", ["the path is not below the API root"])
        api_path = request.path[len(self.prefix):]
        operation, params, exists = self.description.match(request.method, api_path)
        if operation is None:
            what = "method" if exists else "path"
            version = self.description.version
            return _error(404, "Not Found",
                          [f"no such {what} in GitHub's REST description {version}"])
        if not request.headers.get("user-agent"):
            return _error(403, "Request forbidden by administrative rules. Please make sure "
                          "your request has a User-Agent header", ["no User-Agent header"])
        credential = self._credential(request, operation)
        if credential is None:
            return _error(401, "Bad credentials", [])
        values = {k: unquote(v) for k, v in params.items()}
        problems = operation.violations(values, request.query, request.body,
                                        request.headers.get("content-type", ""))
        problems += _rules_beyond_description(operation.operation_id, request)
        if problems:
            return _error(422, "Invalid request.\n\n" + "\n".join(problems), problems, credential)
        with self._lock:
            reply = self._answer(operation, values, request, credential)
        return Reply(reply.status, reply.body, reply.headers, credential=credential)

    def _credential(self, request: Request, operation: Operation) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not value:
            return None
        if operation.operation_id in APP_OPERATIONS:
            return "app-jwt" if self._valid_app_jwt(value) else None
        if secrets.compare_digest(value, self.token):
            return "token"
        if self.app is not None and self.app.tokens.get(value, 0) > time.time():
            return "installation-token"
        return None

    def _valid_app_jwt(self, token: str) -> bool:
        if self.app is None:
            return False
        try:
            claims = jwt.decode(token, self.app.public_key, algorithms=["RS256"], leeway=60,
                                options={"require": ["exp", "iat", "iss"]})
        except jwt.PyJWTError:
            return False
        return bool(str(claims["iss"]) == str(self.app.app_id)
                    and claims["exp"] - claims["iat"] <= 660)

    def _answer(self, op: Operation, p: dict[str, str], request: Request,
                credential: str) -> Reply:
        oid = op.operation_id
        if oid in APP_OPERATIONS:
            return self._app_answer(oid, p)
        repo = self.repositories.get(f"{p['owner']}/{p['repo']}")
        if repo is None:
            return _error(404, "Not Found", [])
        body = request.json() or {}
        if oid.startswith("checks/") and credential != "installation-token":
            return _error(403, "You must authenticate via a GitHub App.", [])
        if oid in PROTECTION_OPERATIONS and self.deny_protection:
            return _error(403, "Resource not accessible by personal access token", [])
        if oid == "repos/create-commit-status":
            status = {"id": next(self._ids), "sha": p["sha"], "context": "default",
                      "created_at": _now(), **body}
            repo.statuses.append(status)
            return Reply(201, status)
        if oid == "checks/create":
            run = {"id": next(self._ids), "status": "queued", "conclusion": None,
                   "annotations": [], **body}
            run["annotations"] = list((body.get("output") or {}).get("annotations") or [])
            run["html_url"] = f"https://github.com/{repo.full_name}/runs/{run['id']}"
            repo.check_runs[run["id"]] = run
            return Reply(201, _public_run(run))
        if oid == "checks/update":
            found = repo.check_runs.get(int(p["check_run_id"]))
            if found is None:
                return _error(404, "Not Found", [])
            run = found
            run.update({k: v for k, v in body.items()})
            run["annotations"] = run["annotations"] + list(
                (body.get("output") or {}).get("annotations") or [])
            return Reply(200, _public_run(run))
        if oid == "checks/list-for-ref":
            runs = [r for r in repo.check_runs.values() if r["head_sha"] == p["ref"]
                    and request.param("check_name") in (None, r["name"])]
            if request.param("filter") != "all":
                latest: dict[str, dict[str, Any]] = {}
                for run in sorted(runs, key=lambda r: r["id"]):
                    latest[run["name"]] = run
                runs = list(latest.values())
            return Reply(200, {"total_count": len(runs),
                               "check_runs": [_public_run(r) for r in runs]})
        if oid == "pulls/list-files":
            files = repo.files.get(int(p["pull_number"]))
            if files is None:
                return _error(404, "Not Found", [])
            return self._page(request, files)
        if oid == "repos/get-repo-rulesets":
            return Reply(200, [{k: r[k] for k in ("id", "name", "target", "enforcement")}
                               for r in repo.rulesets.values()])
        if oid == "repos/create-repo-ruleset":
            ruleset = {"target": "branch", **body, "id": next(self._ids),
                       "source_type": "Repository", "source": repo.full_name}
            repo.rulesets[ruleset["id"]] = ruleset
            return Reply(201, ruleset)
        if oid in ("repos/get-repo-ruleset", "repos/update-repo-ruleset"):
            existing = repo.rulesets.get(int(p["ruleset_id"]))
            if existing is None:
                return _error(404, "Not Found", [])
            if oid == "repos/update-repo-ruleset":
                existing.update(body)
            return Reply(200, existing)
        return _error(501, f"the fake GitHub does not implement {oid}", [])

    def _app_answer(self, oid: str, p: dict[str, str]) -> Reply:
        assert self.app is not None  # a valid App JWT was checked before
        if oid == "apps/get-repo-installation":
            if f"{p['owner']}/{p['repo']}" not in self.repositories:
                return _error(404, "Not Found", [])
            return Reply(200, {"id": self.app.installation_id, "app_id": self.app.app_id})
        if int(p["installation_id"]) != self.app.installation_id:
            return _error(404, "Not Found", [])
        token = "ghs_" + secrets.token_hex(18)
        expires = time.time() + 3600
        self.app.tokens[token] = expires
        return Reply(201, {"token": token, "expires_at": _now(expires)})

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Reply:
        per_page = min(int(request.param("per_page") or 30), 100)
        page = max(int(request.param("page") or 1), 1)
        last = max(1, -(-len(items) // per_page))
        links = []
        for rel, number in (("next", page + 1), ("last", last)):
            if page < last:
                query = urlencode({"per_page": per_page, "page": number})
                links.append(f'<{self.root_url}{request.path}?{query}>; rel="{rel}"')
        headers = {"Link": ", ".join(links)} if links else {}
        return Reply(200, items[(page - 1) * per_page: page * per_page], headers)


def _rules_beyond_description(operation_id: str, request: Request) -> list[str]:
    """What GitHub refuses although its description does not say so."""
    try:
        body = request.json() or {}
    except ValueError:
        return []
    if operation_id == "repos/create-commit-status":
        if len(body.get("description") or "") > STATUS_DESCRIPTION_LIMIT:
            return [f"description is too long (maximum is {STATUS_DESCRIPTION_LIMIT} characters)"]
    if operation_id == "checks/create" and body.get("status") == "completed" \
            and not body.get("conclusion"):
        return ["conclusion is required when status is completed"]
    return []


def _public_run(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "annotations"}


def _error(status: int, message: str, violations: list[str],
           credential: str | None = None) -> Reply:
    return Reply(status, {"message": message, "documentation_url": DOCS},
                 violations=tuple(violations), credential=credential)


def _now(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at if at is not None else time.time()))
