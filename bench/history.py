"""Benchmark: does a release lifecycle cost more when the database holds more history?

Setup. The lifecycle of `bench/engine.py` (its `Bench`: the example product on the `noop`
target, development → staging → production, three approvals, the in-process engine woken by
`services.notify()`), on SQLite (a temporary data directory) and on PostgreSQL (a fresh
database on the local server, dropped afterwards; `--sqlite-only` leaves it out). History is
seeded fast: the rows of one real completed lifecycle (its release, stage runs, deployments
and check runs) are copied with bulk inserts as finished releases `vN` of the same set, until
the database holds `--small` (100) and then `--large` (10,000) finished releases.

It measures, at each size, `--lifecycles` (15) lifecycles one after the other (after a
warm-up): CPU (process time) and wall time per lifecycle, and prints the ratios large/small
(goal ≤ 1.2: the cost of a lifecycle does not grow with finished history).

Run: `.venv/bin/python bench/history.py` (a couple of minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
BATCH = 2_000


def _seed(bench: Any, total: int) -> None:
    """Copy the newest completed release until `total` releases are finished."""
    from sqlalchemy import func, insert, select

    from infrastream.store.database import writing
    from infrastream.store.tables import check_runs, deployments, releases, stage_runs

    db = bench.services.db
    with db.connect() as conn:
        done = conn.execute(select(func.count()).select_from(releases)
                            .where(releases.c.state == "completed")).scalar_one()
        template = conn.execute(select(releases).where(releases.c.state == "completed")
                                .order_by(releases.c.id.desc()).limit(1)).one()._asdict()
        children = {table: [r._asdict() for r in conn.execute(
            select(table).where(table.c.release_id == template["id"]))]
            for table in (stage_runs, deployments, check_runs)}
        next_id = {table: conn.execute(select(func.max(table.c.id))).scalar_one() or 0
                   for table in (releases, stage_runs, deployments, check_runs)}
        number = conn.execute(select(func.max(releases.c.number))).scalar_one() or 0
    number += 1_000_000  # out of the way of the names the lifecycles cut
    while done < total:
        batch = min(BATCH, total - done)
        rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in next_id}
        for _ in range(batch):
            next_id[releases] += 1
            number += 1
            release_id = next_id[releases]
            rows[releases].append({**template, "id": release_id, "name": f"v{number}",
                                   "number": number})
            for table, copies in children.items():
                for child in copies:
                    next_id[table] += 1
                    row = {**child, "id": next_id[table], "release_id": release_id}
                    if table is deployments:
                        row["key"] = f"seed-{next_id[table]}"
                    rows[table].append(row)
        with writing(db) as conn:
            for table, values in rows.items():
                if values:
                    conn.execute(insert(table), values)
        done += batch
    if db.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with db.connect() as conn:
            for table in next_id:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _measure(bench: Any, lifecycles: int, prefix: str) -> tuple[float, float]:
    cpu = time.process_time()
    run = bench.run(1, lifecycles, prefix)
    return (time.process_time() - cpu) / run.lifecycles, run.seconds / run.lifecycles


def measure(label: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    import engine as lifecycle  # bench/engine.py

    bench = lifecycle.Bench(url, data_dir)
    try:
        bench.run(1, lifecycle.WARMUP, "warm")
        _seed(bench, args.small)
        bench.run(1, 2, "settle-small")
        small = _measure(bench, args.lifecycles, "small")
        started = time.perf_counter()
        _seed(bench, args.large)
        seeded = time.perf_counter() - started
        bench.run(1, 2, "settle-large")
        large = _measure(bench, args.lifecycles, "large")
    finally:
        bench.close()
    print(f"== {label} ({args.large:,} finished releases seeded in {seeded:.1f} s)")
    for name, (cpu, wall) in ((f"{args.small:>6,}", small), (f"{args.large:>6,}", large)):
        print(f"  {name} finished releases: {cpu * 1000:6.1f} ms CPU, "
              f"{wall * 1000:6.1f} ms wall per lifecycle")
    print(f"  ratio {args.large:,}/{args.small:,}: CPU {large[0] / small[0]:.2f}, "
          f"wall {large[1] / small[1]:.2f}  (goal ≤ 1.2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--lifecycles", type=int, default=15)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()

    import engine as lifecycle  # bench/engine.py

    with tempfile.TemporaryDirectory() as tmp:
        if not args.postgres_only:
            measure("SQLite", f"sqlite:///{Path(tmp) / 'sqlite' / 'bench.db'}",
                    Path(tmp) / "sqlite", args)
        if not args.sqlite_only:
            found = lifecycle.postgres_url()
            if found is not None:
                url, admin = found
                try:
                    measure("PostgreSQL", url, Path(tmp) / "pg", args)
                finally:
                    lifecycle.drop_postgres(url, admin)


if __name__ == "__main__":
    main()
