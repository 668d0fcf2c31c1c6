"""Benchmark: audited commits per second on PostgreSQL, with and without a hot chain head.

Setup. A fresh PostgreSQL database (`--url`, default the local test server), three tables
shaped like the trail (`log`, `pending`, a one-row `head`), and `--connections` (8) writer
threads, each with its own psycopg connection, each committing `--seconds` (3) worth of
one-entry transactions. Three patterns, measured in the same run:

1. plain: INSERT one row, COMMIT (the floor: what the database does for a one-row commit);
2. old: what every audited write did before: UPDATE the one `audit-head` row (its lock held
   through the commit), INSERT the chained entry, COMMIT;
3. new: what `service.auditing.trail` does now: `pg_try_advisory_xact_lock` (never waits);
   the transaction that gets it probes `pending`, moves the head and INSERTs the chained
   entry; one that does not INSERTs into `pending` and commits. A last chainer links what is
   left waiting, so the figure includes linking every entry.

It prints transactions/s of each and the ratios old/plain and new/plain (goal: new close to
plain, i.e. no cap from a single row).

Run: `.venv/bin/python bench/audit_head.py` (about 15 s).
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
KEY = 0x1A7D17

SCHEMA = """
CREATE TABLE log (seq bigint PRIMARY KEY, body text NOT NULL, hash text NOT NULL);
CREATE TABLE plain (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE TABLE pending (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE TABLE head (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO head VALUES ('audit-head', '0');
"""


def _plain(cur: Any) -> None:
    cur.execute("INSERT INTO plain (body) VALUES (%s)", ("an audited action",))


def _old(cur: Any) -> None:
    cur.execute("UPDATE head SET value = (value::bigint + 1)::text "
                "WHERE key = 'audit-head' RETURNING value")
    seq = int(cur.fetchone()[0])
    cur.execute("INSERT INTO log VALUES (%s, %s, %s)",
                (seq, "an audited action", "h"))


def _link(cur: Any, bodies: list[str]) -> None:
    cur.execute("SELECT value FROM head WHERE key = 'audit-head'")
    seq = int(cur.fetchone()[0])
    rows = [(seq + n + 1, body, "h") for n, body in enumerate(bodies)]
    cur.executemany("INSERT INTO log VALUES (%s, %s, %s)", rows)
    cur.execute("UPDATE head SET value = %s WHERE key = 'audit-head'",
                (str(seq + len(bodies)),))


def _new(cur: Any) -> None:
    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (KEY,))
    if not cur.fetchone()[0]:
        cur.execute("INSERT INTO pending (body) VALUES (%s)",
                    ("an audited action",))
        return
    cur.execute("SELECT id FROM pending LIMIT 1")
    waiting: list[str] = []
    if cur.fetchone() is not None:
        cur.execute("DELETE FROM pending RETURNING id, body")
        waiting = [body for _, body in sorted(cur.fetchall())]
    _link(cur, [*waiting, "an audited action"])


def _run(url: str, connections: int, seconds: float,
         body: Callable[[Any], None]) -> float:
    import psycopg

    conns = [psycopg.connect(url) for _ in range(connections)]
    counts = [0] * connections
    start = threading.Barrier(connections + 1)
    stop = threading.Event()

    def writer(index: int) -> None:
        conn = conns[index]
        start.wait()
        while not stop.is_set():
            with conn.cursor() as cur:
                body(cur)
            conn.commit()
            counts[index] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    with conns[0].cursor() as cur:  # link what is left waiting: part of the cost
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (KEY,))
        cur.execute("DELETE FROM pending RETURNING id, body")
        left = [b for _, b in sorted(cur.fetchall())]
        if left and body is _new:
            _link(cur, left)
    conns[0].commit()
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL server (admin URL)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    import psycopg

    name = f"bench_head_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.url.rsplit("/", 1)[0] + "/" + name
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
        rates = {}
        for label, body in (("plain", _plain), ("old", _old), ("new", _new)):
            rates[label] = _run(url, args.connections, args.seconds, body)
        with psycopg.connect(url) as conn:
            (chained,) = conn.execute("SELECT count(*) FROM log").fetchone() or (0,)
            (waiting,) = conn.execute("SELECT count(*) FROM pending").fetchone() or (0,)
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"audited commits/s with {args.connections} connections on PostgreSQL:")
    for label in ("plain", "old", "new"):
        ratio = rates[label] / rates["plain"]
        print(f"  {label:5} {rates[label]:8.0f} tx/s   ratio to plain {ratio:.2f}")
    print(f"  new / old: {rates['new'] / rates['old']:.2f}×   "
          f"(entries chained {chained}, left waiting {waiting})")


if __name__ == "__main__":
    main()
