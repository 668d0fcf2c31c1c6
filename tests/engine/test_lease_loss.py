"""A server that loses a job's lease stops that job (issue 13, item 1): the work is done once,
by the server that took it over, and the old owner's result is never recorded.

Server A claims a deployment and its target blocks; A's renewer is stalled (A's engine runs
passes by hand here, so no renewer thread runs) until the one-second lease runs out. Server B
takes the job over and its target blocks as well. A's target then returns first: before the
fix A recorded its outcome (the deployment was still `deploying`, so its compare-and-set
won) while B deployed a second time. Now A records nothing — whether its renewer noticed the
loss before the target returned (`renew`) or never ran again (the recording transaction's
fence) — and B's outcome is the one the deployment and the audit trail carry.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from story import CI, PLATFORM, RELEASE_MANAGER, example_repo

from infrastream.cli.manifest_files import read_sources
from infrastream.service import manifests, releases, versions
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.records.leases import Leases
from infrastream.store.tables import audit_log, deployments, job_leases
from infrastream.targets.base import DeployRequest, DeployResult
from infrastream.targets.noop import NoopTarget

LEASE = 1.0


class HeldTarget(NoopTarget):
    """A noop target that is no synchronous one: each deploy waits until the test lets it
    go, then reports which server made it."""

    synchronous = False

    def __init__(self, data_dir: Path, node: str) -> None:
        super().__init__(data_dir)
        self.node = node
        self.calls: list[str] = []
        self.entered = threading.Event()
        self.go = threading.Event()

    def deploy(self, request: DeployRequest) -> DeployResult:
        self.calls.append(request.key)
        self.entered.set()
        assert self.go.wait(30), "the test never let the deployment go"
        done = super().deploy(request)
        return DeployResult(done.key, done.apps, f"deployed by {self.node}")


def _server(tmp_path: Path, database_url: str, node: str) -> tuple[Services, Engine, HeldTarget]:
    services = open_services(tmp_path / node, database_url)
    services.node = node
    target = HeldTarget(tmp_path / node, node)
    services.targets.register("noop", target)
    engine = Engine(services, poll=3600.0, leases=Leases(services.db, node, LEASE))
    engine.node.register()
    return services, engine, target


def _until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("renewer", ["noticed", "stalled"])
def test_a_job_that_outlasts_its_lease_is_done_once_by_the_new_owner(
        tmp_path, database_url, renewer):
    a, engine_a, target_a = _server(tmp_path, database_url, "node-a")
    b, engine_b, target_b = _server(tmp_path, database_url, "node-b")
    try:
        sources, _ = read_sources([str(example_repo(tmp_path, target="noop"))])
        manifests.apply(a, PLATFORM, sources, str(tmp_path))
        for app in ("api", "web", "worker"):
            versions.record_version(a, CI, app, f"registry.example.com/shop/{app}:3.0.0",
                                    "0a1b2c3d")
        releases.create_release(a, RELEASE_MANAGER, "shop")
        engine_a.run_once()  # A starts the development deployment; its target holds it
        assert target_a.entered.wait(30)
        [key] = target_a.calls
        with a.db.connect() as conn:
            [lease] = conn.execute(select(job_leases)).all()
        assert lease.owner == "node-a"
        _until(lambda: time.time() > lease.expires, "the lease never ran out")

        engine_b.run_once()  # the lease ran out: B resumes the deployment
        assert target_b.entered.wait(30)
        assert target_b.calls == [key]
        if renewer == "noticed":
            assert engine_a.leases.renew() == 0  # A's renewer wakes up: the lease is gone
            assert engine_a.leases.lost(f"deploy:{key}")
        target_a.go.set()  # A's target returns first
        _until(lambda: not engine_a.busy(), "A's job never ended")
        with a.db.connect() as conn:
            row = conn.execute(select(deployments).where(deployments.c.key == key)).one()
        assert (row.state, row.message) == ("deploying", "")  # A recorded nothing

        target_b.go.set()
        _until(lambda: not engine_b.busy(), "B's job never ended")
        with a.db.connect() as conn:
            row = conn.execute(select(deployments).where(deployments.c.key == key)).one()
            outcomes = conn.execute(select(audit_log.c.action).where(
                audit_log.c.action.like("deployment.%")
                & (audit_log.c.action != "deployment.start"))).scalars().all()
            leases_left = conn.execute(select(job_leases)).all()
        assert (row.state, row.message) == ("healthy", "deployed by node-b")
        assert outcomes == ["deployment.healthy"]  # recorded once, by B
        assert target_a.calls == target_b.calls == [key]
        assert leases_left == []
        assert engine_a.leases.held() == set()
    finally:
        for engine, target in ((engine_a, target_a), (engine_b, target_b)):
            target.go.set()
            engine.stop()
        a.db.dispose()
        b.db.dispose()
