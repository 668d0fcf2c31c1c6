"""What the notifications add to each engine pass: one call, which never raises.

After the releases moved, the pass hands over what it read: the stage runs still awaiting
approval and their readiness facts. Each role a promotion waits for (people only, see
`notifications.waiting_roles`) is a wait; the notification pass records `approval.waiting`
once per wait, then the reminders and the escalation the track's `approvalReminders` asks
for, and turns the audit entries chained since its cursor (`records.notification_cursor`, an
`audit_log.seq`) into the other kinds. Each notification goes to the channels whose
subscriptions match it (`notification_subscriptions.channels_for`), through
`notification_outbox.record`, deduplicated by key; an audit entry older than a subscription
is not told to it (nor recorded at all when it is older than every one).

Free when nobody subscribed: the engine's looks (`engine.looks`) say whether a subscription
exists, and when none does the pass reads, writes and claims nothing (a wait that still waits
when the first subscription comes is told then; what the audit trail said before is not, see
the cursor). Cheap when nothing is due: this server remembers which waits it saw recorded and
when their next follow-up falls due, and the newest audit sequence number it handled, so a
pass with nothing new costs one statement (the newest `seq`, and whether a notable entry
follows the one handled), asked with the engine's looks when the pass itself wrote nothing,
and writes nothing. (The stored cursor may lag behind entries that notify nobody: whoever
reads them again finds nothing to tell, or keys recorded before.) When there is work, it is
one write transaction, which takes the `notifications` job lease inside itself
(`Leases.hold`: a row lock on PostgreSQL, so a second server skips the work instead of doing
it twice; SQLite's write lock on one server); the pass returns the seconds until the next
reminder falls due, so the engine's timer wakes it then. Whatever fails is logged; the
engine goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select

from infrastream.domain.audit_chain import AuditEntry
from infrastream.domain.notifications import EventKind, Notification
from infrastream.domain.readiness import blockers
from infrastream.domain.stage_machine import StageState
from infrastream.store.clock import utc
from infrastream.store.tables import (
    audit_log,
    notification_events,
    releases,
    stage_runs,
    users,
)

from .. import notification_outbox, telemetry
from .. import notification_subscriptions as subscriptions
from .. import notifications as produce
from ..context import Services
from ..records import notification_cursor, release_content, subscribers
from ..records.leases import Leases
from .state import ActiveRelease, PassState, StageRun

log = logging.getLogger("infrastream.notifications")

LEASE = "notifications"
BATCH = 500
"""Audit entries read per pass at most (the next pass goes on at once)."""
_NONE_HANDLED = 2 ** 62
"""The mark to look after when this server handled nothing yet (it records first anyway)."""

SUBSCRIBED = subscribers.SUBSCRIBED
"""Whether anybody subscribed (the engine asks it with its other looks, `engine.looks`)."""
NEWEST_SEQ = select(func.max(audit_log.c.seq)).scalar_subquery()
NOTABLE_AFTER = (select(audit_log.c.seq)
                 .where((audit_log.c.seq > bindparam("notable_after"))
                        & or_(*(audit_log.c.action == action
                                for action in produce.AUDIT_ACTIONS))).exists())
"""Whether an entry that may become a notification follows `notable_after` (a seq range;
`or_` rather than an IN list, which SQLAlchemy renders again at every execution)."""
_LOOK = select(NEWEST_SEQ, NOTABLE_AFTER)
_NOTABLE = (select(audit_log.c.seq, audit_log.c.at, audit_log.c.actor, audit_log.c.action,
                   audit_log.c.object_type, audit_log.c.object_id, audit_log.c.after)
            .where((audit_log.c.seq > bindparam("after"))
                   & (audit_log.c.seq <= bindparam("newest"))
                   & audit_log.c.action.in_(produce.AUDIT_ACTIONS))
            .order_by(audit_log.c.seq).limit(BATCH))
"""The entries after the cursor that may become a notification (a seq range scan)."""


@dataclass(frozen=True)
class AuditLook:
    """What the audit trail holds for the pass: its newest `seq`, and whether an entry that
    may become a notification follows the newest one this server handled (`handled`)."""

    newest: int
    notable: bool


@dataclass
class _Seen:
    """What this server knows of one wait's notifications."""

    since: datetime
    reminders: int
    last: datetime
    escalated: bool


@dataclass(frozen=True)
class _Candidate:
    wait: produce.Wait
    release: ActiveRelease
    run: StageRun
    facts: Any


class NotifyPass:
    """The notification pass of one server's engine (it keeps what it saw between passes)."""

    def __init__(self, services: Services, leases: Leases) -> None:
        self.services, self.leases = services, leases
        self._seen: dict[str, _Seen] = {}
        self._audit_seen: int | None = None

    @property
    def handled(self) -> int:
        """The newest audit `seq` this server handled (what `AuditLook.notable` follows)."""
        return _NONE_HANDLED if self._audit_seen is None else self._audit_seen

    def run(self, state: PassState, subscribed: bool,
            audit: AuditLook | None = None) -> float | None:
        """Record what is due; seconds until the next follow-up falls due (None: no timer).
        `subscribed`: a subscription exists; `audit`: the trail as the pass looked at it,
        when nothing wrote to it since (else the pass looks itself)."""
        try:
            return self._run(state, subscribed, audit)
        except Exception:  # notifications must never hold up the engine
            log.exception("notification pass failed")
            return None

    def _run(self, state: PassState, subscribed: bool,
             audit: AuditLook | None) -> float | None:
        if not subscribed:  # nobody would hear: nothing to read, record or claim
            self._seen.clear()
            self._audit_seen = None  # the first subscription moves the cursor
            return None
        now = self.services.now()
        candidates = self._waits(state, now)
        self._seen = {c.wait.ident: self._seen[c.wait.ident]
                      for c in candidates if c.wait.ident in self._seen}
        if audit is None:
            with self.services.db.connect() as conn:
                newest, notable = conn.execute(_LOOK, {"notable_after": self.handled}).one()
            audit = AuditLook(newest or 0, bool(notable))
        newest = audit.newest
        if self._audit_seen is not None and newest > self._audit_seen and not audit.notable:
            self._audit_seen = newest  # nothing to tell since: the cursor may lag
        due = [c for c in candidates if self._due(c, now)]
        if due or newest != self._audit_seen:
            if not self._record(due, newest, now):
                return 1.0  # another server is at it: look again soon
            if self._audit_seen != newest:
                return 0.05  # more audit entries than one batch: go on at once
        return self._next(candidates, now)

    # -- the waits ---------------------------------------------------------------------------

    def _waits(self, state: PassState, now: datetime) -> list[_Candidate]:
        found: list[_Candidate] = []
        for release in state.releases:
            content = release.parsed
            track = content.track
            policy = track.spec.approval_reminders
            for run in release.runs:
                stage = release.stages[run.stage_index]
                if run.state != StageState.AWAITING_APPROVAL.value or not stage.approvals:
                    continue
                facts = state.facts(release, run)
                held = blockers(facts, now)
                for role in produce.waiting_roles(held):
                    wait = produce.Wait(
                        stage_run_id=run.id, request_id=run.request_id, role=role,
                        release=release.ref, track=track.metadata.name,
                        stage=stage.display_name, team=produce.team_of(content),
                        blockers=tuple(b.text for b in held), reminders=policy)
                    found.append(_Candidate(wait, release, run, facts))
        return found

    def _follow_ups(self, candidate: _Candidate, seen: _Seen,
                    now: datetime) -> produce.FollowUps:
        return produce.follow_ups(candidate.wait.reminders, since=seen.since,
                                  reminders=seen.reminders, last=seen.last,
                                  escalated_already=seen.escalated, now=now)

    def _due(self, candidate: _Candidate, now: datetime) -> bool:
        seen = self._seen.get(candidate.wait.ident)
        if seen is None:
            return True
        follow = self._follow_ups(candidate, seen, now)
        return follow.reminder is not None or follow.escalate

    def _next(self, candidates: list[_Candidate], now: datetime) -> float | None:
        soonest: float | None = None
        for candidate in candidates:
            seen = self._seen.get(candidate.wait.ident)
            if seen is None:
                continue
            at = self._follow_ups(candidate, seen, now).next_due
            if at is not None:
                seconds = max((at - now).total_seconds(), 0.05)
                soonest = seconds if soonest is None else min(soonest, seconds)
        return soonest

    # -- recording, under the lease ----------------------------------------------------------

    def _record(self, due: list[_Candidate], newest: int, now: datetime) -> bool:
        """Record what is due in one write transaction, which holds the lease; False when
        another server holds it."""
        recorded: list[Notification] = []
        seen: dict[str, _Seen] = {}
        with self.services.transaction() as conn:
            if not self.leases.hold(conn, LEASE):
                return False
            subs = subscriptions.read_all(conn)
            if not subs:  # the last one went since the pass looked: the next pass rests
                return True
            people = _people(conn) if due else []

            def keep(notification: Notification, hearing: list[Any] = subs) -> None:
                channels = subscriptions.channels_for(hearing, notification)
                if notification_outbox.record(conn, notification, channels, now) is not None:
                    recorded.append(notification)

            if due:
                self._follow(conn, due, people, keep, seen, now)
            handled = self._audit(conn, subs, keep, newest)
        self._seen.update(seen)  # only what committed
        for notification in recorded:
            telemetry.NOTIFICATIONS.labels(kind=notification.kind.value).inc()
        self._audit_seen = handled
        if recorded:
            log.info("notifications recorded: %s", ", ".join(n.key for n in recorded))
        return True

    def _follow(self, conn: Connection, due: list[_Candidate], people: list[produce.Person],
                keep: Any, seen_now: dict[str, _Seen], now: datetime) -> None:
        keys = [key for c in due for key in c.wait.all_keys()]
        stored = {row.key: utc(row.created_at) or row.created_at for row in conn.execute(
            select(notification_events.c.key, notification_events.c.created_at)
            .where(notification_events.c.key.in_(keys)))}
        initiators = dict(conn.execute(select(stage_runs.c.id, stage_runs.c.requested_by)
                                       .where(stage_runs.c.id.in_({c.run.id for c in due}))).all())
        link_base = self.services.public_url
        for candidate in due:
            wait, facts = candidate.wait, candidate.facts
            link = produce.release_link(link_base, wait.release)
            track = candidate.release.parsed.track
            recipients = produce.approvers(
                people, role=wait.role, stage=facts.stage, approvals=facts.approvals,
                initiator=initiators.get(candidate.run.id),
                initiator_may_approve=track.spec.policy.initiator_may_approve,
                digest=candidate.release.digest, request_id=wait.request_id, now=now)
            since = stored.get(wait.key(EventKind.APPROVAL_WAITING))
            if since is None:
                keep(produce.waiting(wait, recipients, link, now))
                since = now
            reminders = [stored[k] for n in range(1, 101)
                         if (k := wait.key(EventKind.APPROVAL_REMINDER, n)) in stored]
            seen = _Seen(since, len(reminders), max([since, *reminders]),
                         wait.key(EventKind.APPROVAL_ESCALATED) in stored)
            follow = self._follow_ups(candidate, seen, now)
            policy = wait.reminders
            if follow.reminder is not None:
                keep(produce.reminder(wait, follow.reminder, since, recipients, link, now))
                seen.reminders, seen.last = follow.reminder, now
            if follow.escalate and policy is not None and policy.escalate_to:
                escalate_to = policy.escalate_to
                keep(produce.escalated(wait, escalate_to, since,
                                       produce.holders(people, escalate_to), link, now))
                seen.escalated = True
            seen_now[wait.ident] = seen

    def _audit(self, conn: Connection, subs: list[Any], keep: Any, newest: int) -> int:
        """Notify what the audit entries after the cursor say happened (each to the
        subscriptions that existed by then); the new cursor."""
        cursor = notification_cursor.read(conn)
        after = cursor or 0
        if after >= newest:
            if cursor is None:
                notification_cursor.move(conn, after, exists=False)
            return newest
        found = [_entry(row) for row in conn.execute(_NOTABLE, {
            "after": after, "newest": newest})]
        upto = found[-1].seq if len(found) == BATCH else newest
        since = [(utc(row.created_at) or row.created_at, row) for row in subs]
        facts: dict[str, produce.ReleaseFacts | None] = {}
        for entry in found:
            hearing = [row for created, row in since if created <= entry.at]
            if entry.object_type != "release" or not hearing:
                continue  # nobody subscribed yet when it happened: it is not told
            if entry.object_id not in facts:
                facts[entry.object_id] = _release_facts(conn, entry.object_id)
            try:
                notification = produce.from_audit(entry, facts[entry.object_id],
                                                  self.services.public_url)
            except Exception:  # one odd entry must not stop every later one
                log.exception("audit entry %s could not become a notification", entry.seq)
                continue
            if notification is not None:
                keep(notification, hearing)
        notification_cursor.move(conn, upto, exists=cursor is not None)
        return upto if upto < newest else newest


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=row.seq, at=utc(row.at) or row.at, actor=row.actor,
                      action=row.action, object_type=row.object_type,
                      object_id=row.object_id, before=None, after=row.after, prev_hash="",
                      hash="")


def _people(conn: Connection) -> list[produce.Person]:
    rows = conn.execute(select(users.c.name, users.c.roles, users.c.email)
                        .where(users.c.disabled.is_(False)).order_by(users.c.name))
    return [produce.Person(row.name, frozenset(row.roles or ()), row.email) for row in rows]


def _release_facts(conn: Connection, ref: str) -> produce.ReleaseFacts | None:
    app_set, _, name = ref.partition("/")
    row = conn.execute(select(releases.c.id, releases.c.app_set, releases.c.name,
                              releases.c.track, releases.c.lane, releases.c.digest,
                              releases.c.content)
                       .where((releases.c.app_set == app_set) & (releases.c.name == name))
                       ).first()
    if row is None:
        return None
    return produce.ReleaseFacts(ref=ref, track=row.track, lane=row.lane,
                                content=release_content.of_row(row))
