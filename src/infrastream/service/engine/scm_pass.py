"""What the SCM gate adds to each engine pass: one call, which never raises.

The pull-request heads and the merges move on with database steps only (`gate_job`,
`merge_job`); what talks to a Git host comes back as jobs for the engine's workers: asking
which paths a pull request changes, delivering the outbox per connection (`outbox_job`) and
checking a manifest pull request's tree (`manifest_checks`).
Most passes have nothing for the gate: one statement says so (four EXISTS probes on
indexed columns), so an idle gate costs a pass next to nothing; the engine asks them with its
other looks in the pass's own read transaction (`engine.looks`), so they cost no statement or
transaction of their own.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, exists, or_, select

from infrastream.store.tables import manifest_checks, scm_statuses

from .. import manifest_checks as checks
from .. import scm_outbox
from ..context import Services
from ..records.gate_work import OPEN_HEADS, OPEN_MERGES
from .gate_job import Job, follow_heads
from .merge_job import follow_merges
from .outbox_job import deliver_due

log = logging.getLogger("infrastream.gate")

_OPEN_HEADS = OPEN_HEADS
_OPEN_MERGES = OPEN_MERGES
_PENDING = exists().where(scm_statuses.c.outcome == "pending")
_CHECKS = exists().where(or_(manifest_checks.c.state == "queued",
                              manifest_checks.c.state == "running"))
"""(`or_` rather than an IN list, which SQLAlchemy renders again at every execution.)"""
COLUMNS = (_OPEN_HEADS, _OPEN_MERGES, _PENDING, _CHECKS)
"""The probe as columns (the engine asks them with its other looks, `engine.looks`)."""
_PROBE = select(*COLUMNS)


Probe = tuple[bool, bool, bool, bool]
"""Whether there are open heads, open merges, pending statuses, queued manifest checks."""


def probe(conn: Connection) -> Probe | None:
    """What the gate has to do (None when the probe failed: the next pass retries)."""
    try:
        heads, merges, pending, queued = conn.execute(_PROBE).one()
    except Exception:  # the loop must survive anything; the next pass retries
        log.exception("looking for the gate's work failed")
        return None
    return bool(heads), bool(merges), bool(pending), bool(queued)


def gate_pass(services: Services, found: Probe | None = None) -> list[Job]:
    """Step every open pull request head and merge; the jobs to run for them. `found` is
    the pass's `probe` when it made one, else the probe runs here."""
    jobs: list[Job] = []
    if found is None:
        try:
            with services.db.connect() as conn:
                found = probe(conn)
        except Exception:  # the loop must survive anything; the next pass retries
            log.exception("looking for the gate's work failed")
            return jobs
        if found is None:
            return jobs
    heads, merges, pending, queued = found
    if heads:
        try:
            jobs.extend(follow_heads(services))
        except Exception:
            log.exception("gate pass over pull requests failed")
    if merges:
        try:
            follow_merges(services)
        except Exception:
            log.exception("gate pass over merges failed")
    if queued:
        try:
            with services.db.connect() as conn:
                ids = checks.due(conn, services.now())
            jobs.extend((f"manifest-check:{id_}", checks.run_check, id_) for id_ in ids)
        except Exception:
            log.exception("looking for manifest checks failed")
    if heads or merges or pending:  # the steps above may have queued statuses
        try:
            with services.db.connect() as conn:
                due = scm_outbox.due_connections(conn, services.now())
            jobs.extend((f"scm-outbox:{name}", deliver_due, name) for name in due)
        except Exception:
            log.exception("looking for due commit statuses failed")
    return jobs
