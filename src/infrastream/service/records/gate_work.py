"""What the SCM gate waits on: pull-request heads and merges it has not finished with.

The engine's looks probe them every pass (`engine.scm_pass`); recording a version probes them
too, since a new build matters to the gate only while one of them is open: with none, the
version wakes nobody (the engine would find nothing to do).
"""

from __future__ import annotations

from sqlalchemy import exists, or_

from infrastream.store.tables import gate_heads, gate_merges

OPEN_HEADS = exists().where(gate_heads.c.done.is_(False))
OPEN_MERGES = exists().where(gate_merges.c.done.is_(False))
OPEN_WORK = or_(OPEN_HEADS, OPEN_MERGES)
"""Whether a pull-request head or a merge is still open for the gate, as a column."""
