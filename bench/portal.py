"""Benchmark: the portal's pages on a long history (10,000 releases, 1,000,000 audit entries).

Setup, on SQLite (a WAL file in a temporary data directory): the example product on the
`noop` target, users for every role, one release cut through the service layer (its content
is the template of every seeded release), then bulk inserts straight into the tables:

- 10,000 releases of `shop` (one in a hundred a hotfix), all completed but the newest
  `ACTIVE`, which wait for the production sign-offs; each with its three stage runs, its
  deployments (development, staging, production: with their `result`), six staging check runs
  (integration tests and HTTP for api/web/worker, with output) and the three production
  approvals of a completed release;
- 1,000,000 audit entries after the real ones. Their hash fields look like the real ones
  (64 hex digits, each entry's `prev_hash` is the previous entry's `hash`) but are not
  entry hashes, except the newest `REAL_TAIL`, which are, and a checkpoint signed with the
  server's key pins the entry `CHECKED` before the head: what the audit page verifies
  (checkpoint + tail) is then a real verification. Nothing here verifies the whole chain.

Then the portal is mounted on the API app (`create_app` + `mount_portal`) and driven in
process through `httpx.ASGITransport`, signed in as QA (whose inbox holds the `ACTIVE`
waiting promotions). Per page: 3 warm-up requests, then the median and p90 of `RUNS`
requests' wall time (the whole ASGI request: routing, session check, service calls,
rendering). The floor is the same for `GET /api/v1/healthz`, the trivial route, through the
same transport. Goal: each of the four pages under 100 ms on this machine.

Run: `.venv/bin/python bench/portal.py [--releases N] [--audit N] [--runs N]` (about a minute
with the defaults, most of it seeding; `--help` says what it takes without running).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from infrastream.api.app import create_app
from infrastream.cli.init_cmd import write_example
from infrastream.cli.manifest_files import read_sources
from infrastream.domain.audit_chain import entry_hash
from infrastream.domain.evidence import checkpoint_payload
from infrastream.portal import mount_portal
from infrastream.service import identity, manifests, releases, versions
from infrastream.service.auditing import signing
from infrastream.service.context import Services, open_services
from infrastream.store import tables

RELEASES = 10_000
AUDIT = 1_000_000
ACTIVE = 5
REAL_TAIL = 2_000
CHECKED = 1_000
RUNS = 30
GOAL_MS = 100.0
APPS = ("api", "web", "worker")
ENVS = ("development", "staging", "production")
PEOPLE = [("pat", ["platform"]), ("dana", ["developer"]), ("rita", ["release-manager"]),
          ("quinn", ["qa"]), ("paula", ["product"]), ("sam", ["security"])]
ACTIONS = ["deployment.start", "deployment.healthy", "stage.deployed", "stage.succeed",
           "promotion.request", "promotion.cleared", "approval.grant", "check.passed",
           "release.create", "release.complete"]
ACTORS = ["infrastream", "infrastream", "infrastream", "rita", "quinn", "paula", "sam"]


def _sqlite_time(moment: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def setup(root: Path) -> tuple[Services, dict[str, str], dict[str, Any]]:
    services = open_services(root / "data")
    admin = identity.authenticate(services, identity.bootstrap_admin(services))
    tokens = {name: identity.create_user(services, admin, name, roles).token
              for name, roles in PEOPLE}
    repo = root / "shop"
    write_example(repo)
    envs = repo / "manifests" / "environments.yaml"
    envs.write_text(envs.read_text().replace("type: local", "type: noop"))
    sources, _ = read_sources([str(repo)])
    manifests.apply(services, identity.get_user(services, "pat"), sources, str(repo))
    for app in APPS:
        versions.record_version(services, identity.get_user(services, "dana"), app,
                                f"registry.example.com/shop/{app}:0.0.1", "0a1b2c3d")
    first = releases.create_release(services, identity.get_user(services, "rita"), "shop")
    with services.db.connect() as conn:
        template = conn.execute(text("select content from releases where name = :n"),
                                {"n": first["name"]}).scalar_one()
    return services, tokens, json.loads(template) if isinstance(template, str) else template


def seed_releases(services: Services, template: dict[str, Any]) -> list[str]:
    """RELEASES releases with their stage runs, deployments, checks and approvals."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    release_rows, stage_rows, deploy_rows, check_rows, approval_rows = [], [], [], [], []
    with services.db.connect() as conn:
        base_id = int(conn.execute(text("select coalesce(max(id), 0) from releases"))
                      .scalar_one())
        stage_base = int(conn.execute(text("select coalesce(max(id), 0) from stage_runs"))
                         .scalar_one())
    waiting: list[str] = []
    for number in range(1, RELEASES + 1):
        release_id = base_id + number
        name = f"v{number + 1}"
        active = number > RELEASES - ACTIVE
        hotfix = number % 100 == 0 and not active
        created = start + timedelta(minutes=30 * number)
        finished = created + timedelta(minutes=20)
        tag = f"1.{number // 100}.{number % 100}"
        content = {**template, "name": name, "lane": "hotfix" if hotfix else "release",
                   "versions": {app: {**template["versions"][app],
                                      "image": f"registry.example.com/shop/{app}:{tag}",
                                      "version": tag} for app in APPS}}
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        release_rows.append({
            "id": release_id, "app_set": "shop", "name": name,
            "lane": "hotfix" if hotfix else "release", "track": "shop-track", "digest": digest,
            "content": content, "state": "active" if active else "completed",
            "created_at": created, "created_by": "rita",
            "finished_at": None if active else finished,
            "incident": f"INC-{number}" if hotfix else None, "source_root": None,
            "base_release_id": None, "guard_override": None})
        if active:
            waiting.append(f"shop/{name}")
        for index in range(3):
            stage_id = stage_base + (number - 1) * 3 + index + 1
            state = "awaiting-approval" if active and index == 2 else "succeeded"
            stage_rows.append({
                "id": stage_id, "release_id": release_id, "stage_index": index, "state": state,
                "request_id": 1, "requested_by": "rita", "requested_at": created,
                "attempt": 0 if state == "awaiting-approval" else 1,
                "deployed_at": None if state == "awaiting-approval" else created,
                "finished_at": None if state == "awaiting-approval" else finished,
                "reason": "", "updated_at": finished, "freeze_override": None})
            if state == "awaiting-approval":
                continue
            env = ENVS[index]
            deploy_rows.append({
                "key": f"{release_id}/{env}/1", "release_id": release_id,
                "stage_index": index, "environment": env, "attempt": 1, "state": "healthy",
                "created_at": created, "started_at": created, "finished_at": finished,
                "message": "recorded", "result": {"apps": [
                    {"app": app, "version": tag, "health": "healthy", "endpoint": None,
                     "image": f"registry.example.com/shop/{app}:{tag}", "detail": ""}
                    for app in APPS]}})
            if index == 1:
                for app in APPS:
                    for kind in ("integration-tests", "http"):
                        check_rows.append({
                            "key": f"{release_id}/1/1/staging/{app}/{kind}",
                            "release_id": release_id, "stage_index": 1, "attempt": 1,
                            "environment": "staging", "app": app, "check_type": kind,
                            "state": "passed", "summary": f"{kind} passed",
                            "output": f"{app}: 12 passed in 0.8s\n" * 5,
                            "started_at": created, "finished_at": finished})
            if index == 2:
                for role, user in (("qa", "quinn"), ("product", "paula"),
                                   ("security", "sam")):
                    approval_rows.append({
                        "stage_run_id": stage_id, "request_id": 1, "digest": digest,
                        "user": user, "role": role, "decision": "approve", "comment": "",
                        "at": created})
    with services.transaction() as conn:
        for table, rows in ((tables.releases, release_rows), (tables.stage_runs, stage_rows),
                            (tables.deployments, deploy_rows), (tables.check_runs, check_rows),
                            (tables.approvals, approval_rows)):
            for offset in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[offset:offset + 5000])
    return waiting


def seed_audit(services: Services, refs: list[str]) -> int:
    """AUDIT entries after the real ones: generated by SQLite itself (a recursive CTE), with
    64-hex-digit hashes linked entry to entry; the newest REAL_TAIL with real entry hashes
    and a checkpoint signed with the server's key CHECKED entries below the head."""
    raw = services.db.raw_connection()
    try:
        cursor = raw.cursor()
        last_seq = cursor.execute("select max(seq) from audit_log").fetchone()[0]
        fake_to = last_seq + AUDIT - REAL_TAIL
        lists = {"actors": json.dumps(ACTORS), "actions": json.dumps(ACTIONS),
                 "refs": json.dumps(refs), "envs": json.dumps(list(ENVS))}
        prime = 4503599627370449  # < 2**52: the products below stay exact integers
        parts = ", ".join(f"(s * {a} + {b}) % {prime}" for a, b in (
            (2654435761, 3141592653589793), (2246822519, 2718281828459045),
            (3266489917, 1414213562373095), (668265263, 1732050807568877),
            (374761393, 2236067977499789)))
        digest = f"substr(printf('%013x%013x%013x%013x%013x', {parts}), 1, 64)"
        cursor.execute("BEGIN IMMEDIATE")
        # one index build after the rows is much faster than a million index updates
        cursor.execute("drop index ix_audit_log_object")
        cursor.execute(
            f"""with recursive n(seq) as (select :first union all
                                        select seq + 1 from n where seq < :last)
            insert into audit_log (seq, at, actor, action, object_type, object_id, before,
                                   after, prev_hash, hash)
            select seq,
                   datetime('2024-01-01', '+' || (seq * 15) || ' seconds') || '.000000',
                   json_extract(:actors, '$[' || (seq % {len(ACTORS)}) || ']'),
                   json_extract(:actions, '$[' || (seq % {len(ACTIONS)}) || ']'),
                   'release',
                   json_extract(:refs, '$[' || (seq % {len(refs)}) || ']'),
                   null,
                   json_object('stage', json_extract(:envs, '$[' || (seq % 3) || ']'),
                               'attempt', 1),
                   case when seq = :first then (select hash from audit_log where seq = :first - 1)
                        else {digest.replace("s *", "(seq - 1) *")} end,
                   {digest.replace("s *", "seq *")}
            from n""",
            {"first": last_seq + 1, "last": fake_to, **lists})
        previous = cursor.execute("select hash from audit_log where seq = ?",
                                  (fake_to,)).fetchone()[0]
        moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=15 * fake_to)
        tail = []
        for seq in range(fake_to + 1, fake_to + REAL_TAIL + 1):
            moment += timedelta(seconds=15)
            actor, action = ACTORS[seq % len(ACTORS)], ACTIONS[seq % len(ACTIONS)]
            object_id, after = refs[seq % len(refs)], {"stage": ENVS[seq % 3], "attempt": 1}
            digest_value = entry_hash(seq=seq, at=moment, actor=actor, action=action,
                                      object_type="release", object_id=object_id,
                                      before=None, after=after, prev_hash=previous)
            tail.append((seq, _sqlite_time(moment), actor, action, "release", object_id,
                         None, json.dumps(after), previous, digest_value))
            previous = digest_value
        cursor.executemany("insert into audit_log (seq, at, actor, action, object_type, "
                           "object_id, before, after, prev_hash, hash) "
                           "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tail)
        cursor.execute("create index ix_audit_log_object on audit_log (object_type, object_id)")
        head = fake_to + REAL_TAIL
        cursor.execute("update server_settings set value = ? where key = 'audit-head'",
                       (f"{head}:{previous}",))
        pinned_seq = head - CHECKED
        pinned_hash = cursor.execute("select hash from audit_log where seq = ?",
                                     (pinned_seq,)).fetchone()[0]
        at = datetime.now(UTC)
        signature = signing.sign(services, checkpoint_payload(pinned_seq, pinned_hash,
                                                              at.isoformat()))
        cursor.execute("insert into audit_checkpoints (seq, hash, at, key_id, signature) "
                       "values (?, ?, ?, ?, ?)", (pinned_seq, pinned_hash, _sqlite_time(at),
                                                  signing.key_id(services), signature))
        cursor.execute("COMMIT")
    finally:
        raw.close()
    return head


async def measure(app: Any, token: str, pages: dict[str, str]) -> dict[str, list[float]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        form = (await client.get("/portal/sign-in")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        signed = await client.post("/portal/sign-in", data={"csrf": csrf.group(1),
                                                           "token": token})
        assert signed.status_code == 303, signed.text
        times: dict[str, list[float]] = {}
        for label, path in pages.items():
            for _ in range(3):
                response = await client.get(path)
                assert response.status_code == 200, (path, response.status_code,
                                                     response.text[:500])
            samples = []
            for _ in range(RUNS):
                began = time.perf_counter()
                response = await client.get(path)
                samples.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200
            times[label] = samples
    return times


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-portal-") as directory:
        root = Path(directory)
        began = time.perf_counter()
        services, tokens, template = setup(root)
        waiting = seed_releases(services, template)
        seeded_releases = time.perf_counter() - began
        refs = [f"shop/v{n}" for n in range(2, RELEASES + 2, 7)]
        head = seed_audit(services, refs)
        seeded = time.perf_counter() - began
        with services.db.connect() as conn:
            counts = {t: conn.execute(text(f"select count(*) from {t}")).scalar_one()
                      for t in ("releases", "stage_runs", "deployments", "check_runs",
                                "approvals", "audit_log")}
        print(f"portal benchmark: SQLite, seeded in {seeded:.1f} s (releases "
              f"{seeded_releases:.1f} s): " + ", ".join(f"{v:,} {k}" for k, v in counts.items())
              + f"; audit head {head:,}")
        app = create_app(services)
        mount_portal(app, services)
        pages = {
            "floor: GET /api/v1/healthz": "/api/v1/healthz",
            "tracks overview": "/portal/",
            f"release page ({waiting[-1]}, waiting)": f"/portal/releases/{waiting[-1]}",
            f"release page (shop/v{RELEASES // 2}, completed)":
                f"/portal/releases/shop/v{RELEASES // 2}",
            "my approvals inbox (qa)": "/portal/inbox",
            "audit, first page": "/portal/audit",
            "audit, filtered by actor": "/portal/audit?actor=quinn",
            "audit, by object": f"/portal/audit?type=release&object={refs[3]}",
            "releases list, first page": "/portal/releases",
            "environments matrix": "/portal/environments",
            "release pipeline fragment": f"/portal/releases/{waiting[-1]}/pipeline",
        }
        times = asyncio.run(measure(app, tokens["quinn"], pages))
        floor = statistics.median(times["floor: GET /api/v1/healthz"])
        goals = {"tracks overview", "my approvals inbox (qa)", "audit, first page"}
        print(f"{'page':44} {'median':>9} {'p90':>9} {'× floor':>8}  goal")
        verdicts = []
        for label, samples in times.items():
            median = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            goal = label in goals or label.startswith("release page (")
            verdict = ""
            if goal:
                ok = median < GOAL_MS
                verdicts.append(ok)
                verdict = f"< {GOAL_MS:g} ms: {'met' if ok else 'MISSED'}"
            print(f"{label:44} {median:7.1f}ms {p90:7.1f}ms {median / floor:8.1f}  {verdict}")
        services.db.dispose()
    print("goal: tracks overview, release page, inbox and first audit page each < "
          f"{GOAL_MS:g} ms median: {'met' if all(verdicts) else 'MISSED'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", type=int, default=RELEASES,
                        help=f"completed releases to seed (default {RELEASES:,})")
    parser.add_argument("--audit", type=int, default=AUDIT,
                        help=f"audit entries to seed (default {AUDIT:,})")
    parser.add_argument("--runs", type=int, default=RUNS,
                        help=f"requests per page after the warm-up (default {RUNS})")
    arguments = parser.parse_args()
    RELEASES, AUDIT, RUNS = arguments.releases, arguments.audit, arguments.runs
    sys.exit(main())
