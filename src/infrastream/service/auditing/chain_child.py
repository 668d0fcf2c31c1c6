"""What the child process of a long audit verification runs (`verify`): the chain walked on
a connection of its own, its progress counted into shared memory, the verdict sent back.

A module of its own so that the child imports only what the walk needs (the trail and the
database), not the server's services, targets and API: starting it stays cheap.
"""

from __future__ import annotations

from typing import Any

from infrastream.store.database import create

from . import trail


def walk(url: str, done: Any, sender: Any) -> None:
    """Walk the chain of the database at `url`, counting entries into `done` (a shared
    integer), and send the verdict through `sender` (a pipe end)."""
    db = create(url)
    try:
        with db.connect() as conn:
            sender.send(trail.verify(conn, progress=lambda count: setattr(done, "value", count)))
    finally:
        sender.close()
        db.dispose()
