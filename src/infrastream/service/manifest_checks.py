"""Manifest pull-request checks: a pull request to a manifest source's repository is judged
before it merges, by the same rules that will judge its merge.

The seed approves changes to manifests "via the GitOps pull-request workflow"; this is
Infrastream's part of that review. When a connected Git host reports a pull request opened
or updated in the repository of a source (`source add --scm CONNECTION`), the webhook's
transaction queues a check for the head commit and a `pending` status. An engine worker
then fetches the head (`refs/pull/N/head` on GitHub, `refs/merge-requests/N/head` on
GitLab), validates the source's tree at that commit among the other stored manifests, plans
the revision the merge would make (without writing it) and reports, in context
`infrastream/manifests`:

- `success` or `failure`, with a one-line description (the verdict and who must approve);
- on hosts with check runs (a GitHub App connection): the plan diff and the required
  reviewers as the summary, and every diagnostic as an annotation at its file and line.

The reviewers come from `domain.ownership`, the rule `apply` uses, so a pull request that
changes team B's Application says it needs a reviewer from team B. A push to the source's
branch asks for a sync right away instead of waiting for the next fetch interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import BackendError
from infrastream.domain.manifest_review import Review, planned, review
from infrastream.manifests import Diagnostic, Severity, collection_paused
from infrastream.scm import (
    Annotation,
    AnnotationLevel,
    CommitStatus,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
    StatusState,
)
from infrastream.store.tables import manifest_checks, manifest_sources

from . import scm_outbox
from .context import Services
from .readmodel import ReadModel
from .scm_connections import connected
from .sources import evaluate, tree_of

CONTEXT = "infrastream/manifests"
PULL_REFS = {"github": "refs/pull/{number}/head", "gitlab": "refs/merge-requests/{number}/head"}
LEASE = timedelta(minutes=5)
"""A check a worker took and did not finish (the server died) is taken again after this."""
CHECKED = (PullRequestAction.OPENED, PullRequestAction.UPDATED, PullRequestAction.REOPENED)


class ManifestCheck(ReadModel):
    id: int
    source: str
    repository: str
    number: int
    sha: str
    state: str
    """`queued`, `running`, `done` or `superseded`."""
    verdict: str | None
    message: str
    reviewers: list[str] = []
    summary: str = ""


def same_repository(url: str, name: str) -> bool:
    """Whether a source's repository URL (or path) is the host's repository `name`
    (GitHub `owner/repo`, GitLab `group/project`)."""
    bare = url.strip().rstrip("/").removesuffix(".git").lower()
    wanted = name.strip("/").lower()
    return bare == wanted or bare.endswith("/" + wanted) or bare.endswith(":" + wanted)


def _sources(conn: Connection, connection: str, repository: str) -> list[Any]:
    rows = conn.execute(select(manifest_sources).where(manifest_sources.c.scm == connection))
    return [r for r in rows if same_repository(r.repository, repository)]


def on_pull_request(conn: Connection, *, connection: str, event: PullRequestEvent,
                    public_url: str, now: datetime) -> list[str]:
    """Queue a check of the head for every source in the pull request's repository (in the
    webhook's transaction). Returns what was done, for the delivery's receipt."""
    if event.action not in CHECKED:
        return []
    done: list[str] = []
    for source in _sources(conn, connection, event.repository):
        if source.branch != event.base_branch:
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(manifest_checks).values(
                    source=source.name, connection=connection, repository=event.repository,
                    number=event.number, sha=event.head_sha, state="queued",
                    message="queued", requested_at=now))
        except IntegrityError:
            continue  # this commit was checked (or is queued) already
        scm_outbox.enqueue(conn, connection=connection, repository=event.repository,
                           sha=event.head_sha, status=CommitStatus(
                               StatusState.PENDING, "validating the manifests",
                               _link(public_url, source.name), CONTEXT),
                           subject=f"manifest check of #{event.number}", now=now)
        done.append(f"manifest-check:{source.name}@{event.head_sha[:12]}")
    return done


def on_push(conn: Connection, *, connection: str, event: PushEvent,
            now: datetime) -> list[str]:
    """Ask for a sync of every source whose branch the push moved (the poller fetches it
    within seconds instead of at the next interval)."""
    done = []
    for source in _sources(conn, connection, event.repository):
        if event.branch == source.branch and not event.deleted:
            conn.execute(update(manifest_sources).where(
                manifest_sources.c.name == source.name).values(requested_at=now))
            done.append(f"source-sync:{source.name}")
    return done


def _link(public_url: str, source: str) -> str | None:
    return f"{public_url}/portal/manifests?source={source}" if public_url else None


def _takeable(now: datetime) -> Any:
    return or_(manifest_checks.c.state == "queued",
               (manifest_checks.c.state == "running")
               & (manifest_checks.c.checked_at < now - LEASE))


def due(conn: Connection, now: datetime) -> list[int]:
    return list(conn.execute(select(manifest_checks.c.id).where(_takeable(now))
                             .order_by(manifest_checks.c.id).limit(50)).scalars())


def run_check(services: Services, check_id: int) -> None:
    """The job: take the check, fetch the head, judge its tree, report. Never leaves the
    check taken on failure: a fetch that fails is reported as `error` and done."""
    now = services.now()
    with services.transaction() as conn:
        taken = conn.execute(update(manifest_checks).where(
            (manifest_checks.c.id == check_id) & _takeable(now)).values(
                state="running", checked_at=now)).rowcount
        if not taken:
            return  # another worker has it
        check = conn.execute(select(manifest_checks)
                             .where(manifest_checks.c.id == check_id)).one()
        source = conn.execute(select(manifest_sources)
                              .where(manifest_sources.c.name == check.source)).first()
    scm = connected(services, check.connection)
    link = _link(scm.public_url, check.source)
    if source is None:
        _finish(services, check, "done", "error", "the manifest source was removed", None,
                CommitStatus(StatusState.ERROR, "the manifest source was removed", link,
                             CONTEXT))
        return
    ref = PULL_REFS.get(scm.provider.type_name, PULL_REFS["github"]).format(
        number=check.number)
    try:
        tree = tree_of(services, source)
        head = tree.fetch(ref)
        files = tree.files(check.sha, source.path) if head == check.sha else []
    except BackendError as exc:
        reason = f"cannot fetch {ref}: {exc.reason}"
        _finish(services, check, "done", "error", reason, None,
                CommitStatus(StatusState.ERROR, reason, link, CONTEXT))
        return
    if head != check.sha:
        _finish(services, check, "superseded", None,
                f"the pull request moved on to {head[:12]} before {check.sha[:12]} was checked",
                None, None)
        return
    with services.db.connect() as conn, collection_paused():
        judged = _judge(conn, source, files, check.sha)
        conn.rollback()
    state = StatusState.SUCCESS if judged.ok else StatusState.FAILURE
    _finish(services, check, "done", state.value, judged.title, judged, CommitStatus(
        state, judged.title, link, CONTEXT, title=judged.title, summary=judged.summary,
        annotations=_annotations(judged)))


def _judge(conn: Connection, source: Any, files: list[tuple[str, str]], sha: str) -> Review:
    if not files:
        missing = Diagnostic(source.path or "/", 1, 1, Severity.ERROR, "no-manifests",
                             f"no manifest file under `{source.path or '/'}`",
                             "the source's path must hold the manifests")
        return review([], [missing], commit=sha)
    found = evaluate(conn, source.name, files)
    changes = planned(found.planned.changes) if found.planned is not None else []
    return review(changes, found.problems, refused=found.refused, commit=sha)


def _annotations(judged: Review) -> tuple[Annotation, ...]:
    found = []
    for d in (*judged.problems, *judged.warnings):
        found.append(Annotation(
            path=d.source, start_line=max(d.line, 1), end_line=max(d.line, 1),
            message=d.message + (f"\nhint: {d.hint}" if d.hint else ""),
            level=AnnotationLevel.FAILURE if d.is_error else AnnotationLevel.WARNING,
            title=d.code))
    return tuple(found)


def _finish(services: Services, check: Any, state: str, verdict: str | None, message: str,
            judged: Review | None, status: CommitStatus | None) -> None:
    now = services.now()
    result = None if judged is None else {
        "reviewers": list(judged.reviewers), "summary": judged.summary,
        "changes": [{"kind": c.kind, "name": c.name, "change": c.change,
                     "fields": list(c.fields), "reviewers": list(c.reviewers)}
                    for c in judged.changes]}
    with services.transaction() as conn:
        conn.execute(update(manifest_checks).where(manifest_checks.c.id == check.id).values(
            state=state, verdict=verdict, message=message[:4000], result=result,
            checked_at=now))
        if status is not None:
            scm_outbox.enqueue(conn, connection=check.connection, repository=check.repository,
                               sha=check.sha, status=status,
                               subject=f"manifest check of #{check.number}", now=now)
    services.notify()


def recent(services: Services, source: str | None = None,
           limit: int = 50) -> list[ManifestCheck]:
    """The newest checks (of one source), newest first."""
    query = select(manifest_checks).order_by(manifest_checks.c.id.desc()).limit(limit)
    if source:
        query = query.where(manifest_checks.c.source == source)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [ManifestCheck(id=r.id, source=r.source, repository=r.repository, number=r.number,
                          sha=r.sha, state=r.state, verdict=r.verdict, message=r.message,
                          reviewers=(r.result or {}).get("reviewers", []),
                          summary=(r.result or {}).get("summary", "")) for r in rows]
