"""Verifying the whole audit trail: the hash chain *and* every signed checkpoint.

The chain alone catches a clumsy edit; a careful one (edit an entry, re-hash everything after
it) leaves a chain that verifies. Signed checkpoints catch that: each pins the hash of one
entry with a key the database does not hold, so an entry at or before a checkpoint that was
edited, re-hashed or deleted is named as "entry N does not match signed checkpoint M".
Every problem is reported, not only the first; `reason` is the earliest.

A long trail's chain is walked in a child process (`IN_PROCESS_UP_TO`): hashing a million
entries is seconds of Python under the GIL, and on a thread of the server it would slow every
request the server answers meanwhile; in its own process it costs them nothing (it reads the
database through its own connection, and reports its progress through shared memory). A
short trail is walked in place, where starting a process would cost more than the walk.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from sqlalchemy import Connection, func, select

from infrastream.domain.audit_chain import ChainVerdict
from infrastream.domain.evidence import checkpoint_payload, key_id, verify_signature
from infrastream.store.tables import audit_checkpoints, audit_log

from ..context import Services
from . import chain_child, signing
from . import trail as audit
from .view import VerifyProgress, VerifyReport

IN_PROCESS_UP_TO = 50_000
"""Trails up to this many entries are walked on the calling thread; longer ones in a child."""

_progress_lock = threading.Lock()
_running: dict[str, list[int]] = {}
"""Per database: [entries verified, entries to verify] of each verification running now."""


def progress(services: Services) -> VerifyProgress:
    """How far the running verification has got (the CLI draws it as a progress bar)."""
    with _progress_lock:
        found = _running.get(str(services.db.url))
        return VerifyProgress(running=found is not None, done=found[0] if found else 0,
                              total=found[1] if found else 0)


def verify_all(services: Services) -> VerifyReport:
    """Verify the chain and every checkpoint, publishing progress while it runs (it runs on
    the API's worker threads, never on the event loop, so the API stays responsive)."""
    key = str(services.db.url)
    with services.db.connect() as conn:
        total = conn.execute(select(func.max(audit_log.c.seq))).scalar_one_or_none() or 0
    state = [0, int(total)]
    with _progress_lock:
        _running[key] = state

    def advance(done: int) -> None:
        with _progress_lock:
            state[0] = done
    try:
        return _verify_all(services, advance)
    finally:
        with _progress_lock:
            if _running.get(key) is state:
                del _running[key]


def _verify_all(services: Services, advance: Any) -> VerifyReport:
    public = signing.private_key(services).public_key()
    current = key_id(public)
    problems: list[tuple[int, str]] = []
    signed: list[int] = []
    audit.settle(services.db)
    with services.db.connect() as conn:
        newest = conn.execute(select(func.max(audit_log.c.seq))).scalar_one_or_none() or 0
        chain = (audit.verify(conn, progress=advance) if newest <= IN_PROCESS_UP_TO
                 else _walk_in_child(services, advance))
        rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).all()
        for row in rows:
            checkpoint = signing.checkpoint_json(row)
            payload = checkpoint_payload(row.seq, row.hash, checkpoint["at"])
            if row.key_id != current:
                problems.append((row.seq, f"checkpoint {row.seq} was signed with key "
                                 f"{row.key_id}, not this server's key {current}"))
            elif not verify_signature(public, payload, row.signature):
                problems.append((row.seq, f"checkpoint {row.seq}'s signature does not verify: "
                                 "the checkpoint was forged or edited"))
            else:
                signed.append(row.seq)
                problem = _entry_against(conn, row)
                if problem:
                    problems.append((row.seq, problem))
        if not chain.ok:
            problems.extend(_chain_problem(conn, chain, signed, problems))
        waiting = audit.waiting(conn)
    problems.sort(key=lambda problem: problem[0])
    intact = "the chain is intact and every checkpoint verifies"
    if waiting:
        intact += f"; {waiting} newer entries wait to be chained (not yet verified)"
    return VerifyReport(waiting=waiting,
        ok=not problems, entries=chain.entries, checkpoints=len(rows),
        broken_at=problems[0][0] if problems else None,
        reason=problems[0][1] if problems else intact,
        problems=[message for _, message in problems])


def _walk_in_child(services: Services, advance: Any) -> ChainVerdict:
    """The chain walked by a child process on its own connection (progress shared)."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded server
    done = context.Value("q", 0, lock=False)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=chain_child.walk, name="infrastream-audit-verify", daemon=True,
                            args=(services.db.url.render_as_string(hide_password=False),
                                  done, sender))
    child.start()
    sender.close()
    try:
        while not receiver.poll(0.1):
            advance(done.value)
            if not child.is_alive() and not receiver.poll(0):
                raise RuntimeError(f"the audit verification process ended with exit code "
                                   f"{child.exitcode} before it answered")
        verdict: ChainVerdict = receiver.recv()
    finally:
        receiver.close()
        child.join(timeout=10)
    advance(verdict.entries)
    return verdict


def _entry_against(conn: Connection, checkpoint: Any) -> str | None:
    """Does the entry a (validly signed) checkpoint pinned still carry the signed hash?"""
    now = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == checkpoint.seq)
                       ).scalar_one_or_none()
    seq = checkpoint.seq
    if now is None:
        return f"entry {seq} does not match signed checkpoint {seq}: the entry was deleted"
    if now != checkpoint.hash:
        return (f"entry {seq} does not match signed checkpoint {seq}: its hash differs from the "
                "signed one, so the chain up to it was rewritten")
    return None


def _chain_problem(conn: Connection, chain: ChainVerdict, signed: list[int],
                   found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The chain's break, named by the entry at fault and the checkpoint that covers it."""
    broken = chain.broken_at or 0
    before = conn.execute(select(func.max(audit_log.c.seq))
                          .where(audit_log.c.seq < broken)).scalar_one_or_none() or 0
    if broken - before > 1:
        culprit = before + 1
        gone = f"entry {culprit}" if broken - before == 2 else f"entries {culprit}–{broken - 1}"
        detail = f"{gone} {'was' if broken - before == 2 else 'were'} deleted"
    else:
        culprit, detail = broken, chain.reason
    covering = min((seq for seq in signed if seq >= culprit), default=None)
    if covering is None:
        return [(culprit, detail)]
    message = f"entry {culprit} does not match signed checkpoint {covering}: {detail}"
    if any(text.startswith(f"entry {culprit} does not match signed") for _, text in found):
        return []
    return [(culprit, message)]
