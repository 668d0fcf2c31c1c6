"""Benchmark: `audit verify` against the floor of hashing the same bytes.

Setup. A fresh database (SQLite in a temporary directory, or a new PostgreSQL database with
`--postgres`) holding `--entries` (100,000) audit entries shaped like the real ones (a
release action, `before` null, an `after` object of a few fields), seeded with bulk inserts
through the real table types (so `before`/`after` are stored as canonical JSON text, as the
trail writes them).

It measures, in the same run:

1. verify: `service.auditing.trail.verify` over the whole trail (what `audit verify` runs,
   before checking the signed checkpoints): read in chunks, every hash and link checked;
2. the floor: sha256 over exactly the bytes the hashes cover, already in memory;
3. the read floor: the same chunked query over the same rows (raw cursor) plus that sha256,
   what any verification that reads the database cannot go below.

It prints the times, entries/s, verify / sha256 floor (goal ≤ 3) and verify / read floor.

With `--serving` (SQLite only) it then starts a real `infrastream serve` on that database and
measures what the issue asks of a verification besides speed, that it never blocks the server:
`GET /api/v1/healthz` requests/s from 4 client threads while the server is idle, then while
the same server answers `GET /api/v1/audit/verify` (what `infrastream audit verify` calls),
and the ratio of the two (1.0: the verification costs the API nothing).

Run: `.venv/bin/python bench/audit.py` (about 20 s; `--entries 1000000` for the issue's
1M figure, a few minutes, most of it seeding).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 10_000


def _seed(engine: object, count: int) -> list[bytes]:
    from sqlalchemy import insert

    from infrastream.domain.audit_chain import GENESIS, stored_bytes
    from infrastream.domain.release import canonical_json
    from infrastream.store.database import writing
    from infrastream.store.tables import audit_log, server_settings

    start = datetime(2026, 1, 1, tzinfo=UTC)
    previous = GENESIS
    hashed: list[bytes] = []
    rows: list[dict[str, object]] = []
    for seq in range(1, count + 1):
        at = start + timedelta(milliseconds=seq)
        after = {"release": f"shop/2026.01.01-{seq}", "environment": "production",
                 "state": "deployed", "apps": ["web", "api", "worker"]}
        body = stored_bytes(seq, at.isoformat(), "rita", "deployment.finish", "release",
                            f"shop/2026.01.01-{seq}", "null",
                            canonical_json(after).decode(), previous)
        digest = hashlib.sha256(body).hexdigest()
        hashed.append(body)
        rows.append({"seq": seq, "at": at, "actor": "rita", "action": "deployment.finish",
                     "object_type": "release", "object_id": f"shop/2026.01.01-{seq}",
                     "before": None, "after": after, "prev_hash": previous, "hash": digest})
        previous = digest
        if len(rows) == BATCH or seq == count:
            with writing(engine) as conn:
                conn.execute(insert(audit_log), rows)
            rows = []
    with writing(engine) as conn:
        conn.execute(insert(server_settings).values(key="audit-head",
                                                    value=f"{count}:{previous}"))
    return hashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument("--serving", action="store_true",
                        help="also: /healthz requests/s of a real server while it verifies")
    args = parser.parse_args()
    if args.serving and args.postgres:
        parser.error("--serving measures on SQLite only")

    from sqlalchemy import create_engine, text

    from infrastream.service.auditing import trail
    from infrastream.store.database import open_database

    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench_audit_{uuid.uuid4().hex[:8]}"
        if args.postgres:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = open_database(url)
        try:
            began = time.perf_counter()
            hashed = _seed(engine, args.entries)
            seeded = time.perf_counter() - began

            began = time.perf_counter()
            for body in hashed:
                hashlib.sha256(body).hexdigest()
            floor = time.perf_counter() - began

            began = time.perf_counter()  # reading the same rows, hashing the bytes
            with engine.connect() as conn:
                cursor = conn.connection.cursor()
                last = 0
                while True:
                    cursor.execute(trail._stored_query(conn.dialect.name, last, 20_000))
                    chunk = cursor.fetchall()
                    if not chunk:
                        break
                    for body in hashed[last:last + len(chunk)]:
                        hashlib.sha256(body).hexdigest()
                    last = chunk[-1][0]
                cursor.close()
            read_floor = time.perf_counter() - began

            began = time.perf_counter()
            with engine.connect() as conn:
                verdict = trail.verify(conn)
            verify = time.perf_counter() - began
            engine.dispose()
            serving = _serving(url) if args.serving else None
        finally:
            engine.dispose()
            if args.postgres:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if not verdict.ok or verdict.entries != args.entries:
        print(f"verification failed: {verdict}", file=sys.stderr)
        sys.exit(1)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"audit verify, {args.entries:,} entries on {backend} (seeded in {seeded:.1f} s):")
    print(f"  verify        {verify:7.2f} s   {args.entries / verify:10,.0f} entries/s")
    print(f"  sha256 floor  {floor:7.2f} s   {args.entries / floor:10,.0f} entries/s")
    print(f"  read + sha256 {read_floor:7.2f} s   {args.entries / read_floor:10,.0f} entries/s")
    print(f"  verify / sha256 floor: {verify / floor:.2f}  (goal ≤ 3)")
    print(f"  verify / read + sha256 floor: {verify / read_floor:.2f}")
    if serving is not None:
        idle, busy, took, ok = serving
        print(f"  a real server, GET /healthz from {HEALTH_CLIENTS} clients: idle {idle:,.0f} "
              f"req/s; while it answers GET /audit/verify ({took:.2f} s, "
              f"{'ok' if ok else 'NOT ok'}) {busy:,.0f} req/s; ratio {busy / idle:.2f}")


HEALTH_CLIENTS = 4


def _healthz_rate(base: str, seconds: float | None, until: Any = None) -> float:
    """Requests/s of GET /healthz from HEALTH_CLIENTS threads, for `seconds` or until the
    event `until` is set."""
    import httpx

    done = threading.Event()
    counts = [0] * HEALTH_CLIENTS

    def client(index: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while not done.is_set():
                http.get("/healthz").raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(HEALTH_CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    if until is not None:
        until.wait()
    else:
        time.sleep(seconds or 0)
    done.set()
    took = time.perf_counter() - began
    for thread in threads:
        thread.join()
    return sum(counts) / took


def _serving(url: str) -> tuple[float, float, float, bool]:
    """(idle req/s, req/s during a verification, its seconds, whether it said ok)."""
    import httpx

    sys.path.insert(0, str(ROOT / "bench"))
    from scale_out import cluster

    from engine import sources

    with cluster(url, 1, sources()) as made:
        base = made.bases[0]
        idle = _healthz_rate(base, 3.0)
        verified = threading.Event()
        result: dict[str, Any] = {}

        def verify() -> None:
            began = time.perf_counter()
            try:
                result.update(httpx.get(f"{base}/audit/verify", timeout=600, headers={
                    "Authorization": f"Bearer {made.tokens['pat']}"}).raise_for_status().json())
            finally:
                result["took"] = time.perf_counter() - began
                verified.set()

        worker = threading.Thread(target=verify)
        worker.start()
        busy = _healthz_rate(base, None, verified)
        worker.join()
    return idle, busy, float(result["took"]), bool(result.get("ok"))


if __name__ == "__main__":
    main()
