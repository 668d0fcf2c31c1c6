"""Three `infrastream serve` processes on one PostgreSQL database (issue 13, item 7).

30 lifecycles are cut alternately on each server, through a `local` environment (bound to one
node) and two `noop` ones; midway one server that runs no local environment is killed with
SIGKILL. Every release completes; each (release, environment) deployment reached its target
exactly once (counted at the targets: the local target's start markers, the noop target's call
log), no environment ever had two overlapping deployments (from the audit order), every check
ran once (counted by the check command itself), and `audit verify` passes on every server.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from servers import Server, apply, signing_key, target_starts, users, wait_for
from sqlalchemy import create_engine, select

from infrastream.cli.init_cmd import write_example
from infrastream.manifests.environment import default_environment
from infrastream.store.tables import audit_log, node_bindings
from infrastream.targets.local import LocalTarget

LIFECYCLES = 30
KILL_AT = 12
LEASE = "3"

TRACK = """apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata:
  name: shop-track
spec:
  releaseStages:
    - environments: [dev]
      checks:
        - type: integration-tests
    - environments: [qa]
    - environments: [prod]
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata:
  name: shop
  parent:
    kind: ReleaseTrack
    name: shop-track
spec:
  description: One API, released through a local and two noop environments.
"""

ENVIRONMENTS = """apiVersion: lowops.manifests.v1
kind: Environment
metadata:
  name: dev
spec:
  tier: development
  target:
    type: local
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata:
  name: qa
spec:
  tier: staging
  target:
    type: noop
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata:
  name: prod
spec:
  tier: production
  target:
    type: noop
"""

COUNT_CHECK = """import os
names = ("INFRASTREAM_RELEASE", "INFRASTREAM_ENVIRONMENT", "INFRASTREAM_APP")
with open("checks.log", "a") as log:
    log.write(" ".join(os.environ[n] for n in names) + "\\n")
"""


def _repo(directory: Path) -> Path:
    repo = directory / "shop"
    write_example(repo)
    manifests = repo / "manifests"
    for app in ("web", "worker"):
        (manifests / "apps" / f"{app}.yaml").unlink()
    (manifests / "track.yaml").write_text(TRACK)
    (manifests / "environments.yaml").write_text(ENVIRONMENTS)
    (repo / "tests" / "smoke_test.py").write_text(COUNT_CHECK)  # counts each check run
    return repo


def _noop_calls(servers: list[Server], environment: str) -> Counter[str]:
    calls: Counter[str] = Counter()
    for server in servers:
        path = server.data_dir / "noop" / f"{environment}.calls"
        if path.exists():
            calls.update(path.read_text().split())
    return calls


def _overlaps(entries: list[tuple[str, dict]]) -> list[str]:
    """Deployments started in an environment while another was still running there."""
    busy: dict[str, bool] = {}
    found = []
    for action, after in entries:
        if action == "deployment.start":
            for env in after["environments"]:
                if busy.get(env):
                    found.append(env)
                busy[env] = True
        elif action in ("deployment.healthy", "deployment.failed"):
            busy[after["environment"]] = False
    return found


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_servers_run_every_job_once_and_survive_a_killed_one(tmp_path, database_url):
    repo = _repo(tmp_path)
    key = signing_key()
    servers = [Server(tmp_path / name, database_url, node=name, key=key,
                      env={"INFRASTREAM_LEASE_SECONDS": LEASE}) for name in ("n1", "n2", "n3")]
    db = create_engine(database_url)
    try:
        for server in servers:
            server.start()
        tokens = users(servers[0].client(servers[0].admin_token()))
        apply(servers[1].client(tokens["pat"]), repo)
        alive = list(servers)
        killed: Server | None = None
        for number in range(1, LIFECYCLES + 1):
            if number == KILL_AT:
                with db.connect() as conn:
                    bound = set(conn.execute(select(node_bindings.c.node)).scalars())
                killed = next(s for s in servers if s.node not in bound)
                killed.kill()
                alive.remove(killed)
            cutter = alive[number % len(alive)]
            cutter.client(tokens["ci"]).post("/applications/api/versions", json={
                "image": f"registry.example.com/shop/api:3.0.{number}"}).raise_for_status()
            cutter.client(tokens["rita"]).post(
                "/releases", json={"applicationSet": "shop"}).raise_for_status()
            for stage in (0, 1):
                wait_for(alive[(number + 1) % len(alive)].client(tokens["rita"]),
                         f"/releases/shop/v{number}",
                         lambda s, i=stage: s["stages"][i]["state"] == "succeeded")
                if stage == 0:
                    alive[(number + stage) % len(alive)].client(tokens["rita"]).post(
                        f"/releases/shop/v{number}/promotions").raise_for_status()
            alive[number % len(alive)].client(tokens["rita"]).post(
                f"/releases/shop/v{number}/promotions").raise_for_status()
            status = wait_for(alive[(number + 2) % len(alive)].client(tokens["rita"]),
                              f"/releases/shop/v{number}", lambda s: s["state"] == "completed")
            assert status["state"] == "completed"

        starts = target_starts(servers, "dev")
        assert starts == {(f"{n}/dev/1", "api"): 1 for n in range(1, LIFECYCLES + 1)}, starts
        for env in ("qa", "prod"):
            calls = _noop_calls(servers, env)
            assert calls == {f"{n}/{env}/1": 1 for n in range(1, LIFECYCLES + 1)}, (env, calls)
        checks = Counter((repo / "checks.log").read_text().splitlines())
        assert checks == {f"shop/v{n} {env} api": 1 for n in range(1, LIFECYCLES + 1)
                          for env in ("dev",)}, checks
        with db.connect() as conn:
            entries = [(row.action, row.after or {}) for row in conn.execute(
                select(audit_log.c.action, audit_log.c.after).order_by(audit_log.c.seq))]
        assert _overlaps(entries) == []
        for server in alive:
            verdict = server.client(tokens["rita"]).get("/audit/verify").raise_for_status()
            assert verdict.json()["ok"], verdict.json()
        assert killed is not None
    finally:
        db.dispose()
        for server in servers:
            server.stop()
            LocalTarget(server.data_dir).teardown(default_environment("dev"))
