"""Finding releases and reading their stage runs and approvals.

A release is referred to as `<set>/<name>` (`ReleaseRef`, e.g. `shop/v3`). Its stages and
track come from its own manifest snapshot (parsed once per release: `release_content`),
never from today's manifests.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from infrastream.domain.approvals import Approval
from infrastream.domain.errors import Invalid, NotFound
from infrastream.domain.forward_port import Fix
from infrastream.manifests import Lane, ReleaseTrack, Stage
from infrastream.store.clock import utc
from infrastream.store.tables import approvals, deployments, releases, stage_runs

from . import release_content


class ReleaseState:
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class ReleaseRef:
    app_set: str
    name: str

    def __str__(self) -> str:
        return f"{self.app_set}/{self.name}"


def parse_ref(text: str) -> ReleaseRef:
    app_set, _, name = text.partition("/")
    if not app_set or not name:
        raise Invalid(f"`{text}` is not a release reference: use SET/NAME, e.g. shop/v3")
    return ReleaseRef(app_set, name)


_LEAN = [column for column in releases.c if column.name != "content"]
"""A release row without its `content`: decoding that JSON is most of a row's cost, and the
parsed content is one `release_content.load` away (cached by digest)."""
_BY_REF = (releases.c.app_set == bindparam("app_set")) & (releases.c.name == bindparam("name"))
_FIND = select(releases).where(_BY_REF)
_FIND_LEAN = select(*_LEAN).where(_BY_REF)


def find(conn: Connection, ref: ReleaseRef, *, content: bool = True) -> Any:
    """The `releases` row of `ref` (NotFound if none); without `content` when not asked for
    (`release_content.load(conn, row.id, row.digest)` has it parsed)."""
    row = conn.execute(_FIND if content else _FIND_LEAN,
                       {"app_set": ref.app_set, "name": ref.name}).first()
    if row is None:
        raise NotFound(f"release `{ref}` does not exist")
    return row


def find_lean(conn: Connection, ref: ReleaseRef) -> Any:
    """`find` without the row's `content`: what a use case that acts on the release needs
    (`content_of` has its parsed content, cached by digest)."""
    return find(conn, ref, content=False)


_LeanRelease = namedtuple("_LeanRelease", [c.name for c in _LEAN])  # type: ignore[misc]
_Run = namedtuple("_Run", [c.name for c in stage_runs.c])  # type: ignore[misc]
_WITH_RUNS = (select(*_LEAN, *stage_runs.c)
              .join_from(releases, stage_runs, stage_runs.c.release_id == releases.c.id)
              .where(_BY_REF).order_by(stage_runs.c.stage_index))
_WITH_LOCKED_RUNS = _WITH_RUNS.with_for_update(of=stage_runs)


def find_with_runs(conn: Connection, ref: ReleaseRef, *,
                   lock: bool = False) -> tuple[Any, list[Any]]:
    """`find_lean` and `stage_rows` in one statement: the release and its stage runs, first
    stage first; `lock` locks the runs until the transaction ends (PostgreSQL: FOR UPDATE OF
    stage_runs, the release row stays unlocked; SQLite: the write lock BEGIN IMMEDIATE
    took)."""
    rows = conn.execute(_WITH_LOCKED_RUNS if lock else _WITH_RUNS,
                        {"app_set": ref.app_set, "name": ref.name}).all()
    if not rows:  # no such release, or one without stage runs
        return find_lean(conn, ref), []
    width = len(_LEAN)
    return (_LeanRelease(*rows[0][:width]), [_Run(*row[width:]) for row in rows])


def content_of(conn: Connection, release: Any) -> release_content.ReleaseContent:
    """The parsed content of a release row (lean or not), read only when not cached."""
    return release_content.load(conn, release.id, release.digest)


def release_stages(release: Any) -> list[Stage]:
    """The stages of the release's lane, from the release's own manifest snapshot."""
    return release_content.of_row(release).stages(release.lane)


def release_track(release: Any) -> ReleaseTrack:
    return release_content.of_row(release).track


_STAGE_ROWS = (select(stage_runs).where(stage_runs.c.release_id == bindparam("release_id"))
               .order_by(stage_runs.c.stage_index))


def stage_rows(conn: Connection, release_id: int) -> list[Any]:
    return list(conn.execute(_STAGE_ROWS, {"release_id": release_id}))


_APPROVAL_COLUMNS = (approvals.c.stage_run_id, approvals.c.user, approvals.c.role,
                     approvals.c.at, approvals.c.digest, approvals.c.request_id,
                     approvals.c.comment)
_APPROVALS = (
    select(*_APPROVAL_COLUMNS)
    .where(approvals.c.stage_run_id.in_(bindparam("ids", expanding=True))
           & (approvals.c.decision == "approve"))
    .order_by(approvals.c.id))
_APPROVALS_OF_ONE = (
    select(*_APPROVAL_COLUMNS)
    .where((approvals.c.stage_run_id == bindparam("id")) & (approvals.c.decision == "approve"))
    .order_by(approvals.c.id))
"""`_APPROVALS` for one run: no expanding IN to render at every execution."""


def _approval(row: Any) -> Approval:
    return Approval(row.user, row.role, utc(row.at) or row.at, row.digest, row.request_id,
                    row.comment)


def approvals_by_run(conn: Connection, run_ids: Iterable[int]) -> dict[int, list[Approval]]:
    """The approvals given to each of these stage runs, oldest first (one statement)."""
    ids = list(run_ids)
    found: dict[int, list[Approval]] = {run_id: [] for run_id in ids}
    if not ids:
        return found
    rows = (conn.execute(_APPROVALS_OF_ONE, {"id": ids[0]}) if len(found) == 1
            else conn.execute(_APPROVALS, {"ids": ids}))
    for row in rows:
        found[row.stage_run_id].append(_approval(row))
    return found


def approvals_of(conn: Connection, stage_run_id: int) -> list[Approval]:
    return [_approval(row) for row in conn.execute(_APPROVALS_OF_ONE, {"id": stage_run_id})]


_LAST_STAGE = (select(func.max(stage_runs.c.stage_index))
               .where(stage_runs.c.release_id == releases.c.id).scalar_subquery())
_RECENT = 200
_RECENT_HEALTHY = (select(deployments.c.id, deployments.c.release_id,
                          deployments.c.stage_index)
                   .where(deployments.c.state == "healthy")
                   .order_by(deployments.c.id.desc()).limit(_RECENT).subquery())


def _production(*columns: Any) -> tuple[Any, Any]:
    """The statements that find the set's release in production, with these columns: among
    the newest healthy deployments first, then over the set's releases."""
    recently = (select(*columns)
                .join(_RECENT_HEALTHY, _RECENT_HEALTHY.c.release_id == releases.c.id)
                .where((releases.c.app_set == bindparam("app_set"))
                       & (_RECENT_HEALTHY.c.stage_index == _LAST_STAGE))
                .order_by(_RECENT_HEALTHY.c.id.desc()).limit(1))
    anywhere = (select(*columns)
                .join(deployments, deployments.c.release_id == releases.c.id)
                .where((releases.c.app_set == bindparam("app_set"))
                       & (deployments.c.state == "healthy")
                       & (deployments.c.stage_index == _LAST_STAGE))
                .order_by(deployments.c.id.desc()).limit(1))
    return recently, anywhere


_IN_PRODUCTION_RECENTLY, _IN_PRODUCTION = _production(*_LEAN)
_FOR_FIXES = (releases.c.id, releases.c.lane, releases.c.digest)
_PRODUCTION = _production(*_FOR_FIXES)[1]
_PRODUCTION_RECENTLY = (
    select(*_FOR_FIXES)
    .join(deployments, deployments.c.release_id == releases.c.id)
    .where((deployments.c.state == "healthy")
           & (deployments.c.id > select(func.max(deployments.c.id)).scalar_subquery() - _RECENT)
           & (releases.c.app_set == bindparam("app_set"))
           & (deployments.c.stage_index == _LAST_STAGE))
    .order_by(deployments.c.id.desc()).limit(1))
"""`in_production`'s first look with only what the hotfixes need (no JSON column to decode),
and among the newest deployments by an id range: a walk down `ix_deployments_state` that
stops at the first match, where a LIMIT in a subquery makes SQLite copy those rows first."""


def in_production(conn: Connection, app_set: str) -> Any | None:
    """The release of the set that runs in production now: the one whose deployment into its
    lane's last stage succeeded last (a rollback there counts: it is what runs). The row
    has no `content`: `release_content.load(conn, row.id, row.digest)` has it parsed.

    Looked for first among the newest healthy deployments (a walk down an index, whatever
    the history), and only when none of them is the set's over the set's releases."""
    found = conn.execute(_IN_PRODUCTION_RECENTLY, {"app_set": app_set}).first()
    if found is not None:
        return found
    return conn.execute(_IN_PRODUCTION, {"app_set": app_set}).first()


def _fixes(conn: Connection, production: Any | None) -> list[Fix]:
    if production is None or production.lane != Lane.HOTFIX.value:
        return []
    content = release_content.load(conn, production.id, production.digest).raw
    return [Fix.from_json(f) for f in content["hotfix"]["fixes"]]


def active_fixes(conn: Connection, app_set: str) -> tuple[Any | None, list[Fix]]:
    """The release in production and the hotfixes it carries (empty for a regular one)."""
    production = in_production(conn, app_set)
    return production, _fixes(conn, production)


def production_fixes(conn: Connection, app_set: str) -> list[Fix]:
    """`active_fixes` without the release: the hotfixes the set's release in production
    carries, read with only the columns they need."""
    params = {"app_set": app_set}
    production = (conn.execute(_PRODUCTION_RECENTLY, params).first()
                  or conn.execute(_PRODUCTION, params).first())
    return _fixes(conn, production)
