"""Servers wake each other (issue 13, item 3): an approval recorded on server A starts the
deployment on server B, whose node the `local` environment is bound to, because A's engine
sends PostgreSQL's NOTIFY and B's listener wakes B's engine, not because B polls.

Both engines poll once an hour, so without the wake-up B would not look again during the test:
the release completes only if the NOTIFY reached B. The local target's start marker under B's
data directory (and nothing under A's) shows where the deployment ran.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from story import CI, PLATFORM, PRODUCT, QA, RELEASE_MANAGER, SECURITY

from infrastream.domain.errors import Conflict
from infrastream.manifests.environment import default_environment
from infrastream.service import manifests, promotions, releases, versions
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.engine.wakeups import Wakeups
from infrastream.service.records.nodes import Node
from infrastream.service.records.releases import parse_ref
from infrastream.service.teardown import teardown
from infrastream.service.views.release_status import release_status
from infrastream.targets.local import LocalTarget

POLL = 3600.0

MANIFESTS = """apiVersion: lowops.manifests.v1
kind: Environment
metadata:
  name: edge
spec:
  tier: production
  target:
    type: local
---
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata:
  name: edge-track
spec:
  releaseStages:
    - environments: [edge]
      approvals:
        - role: qa
        - role: product
        - role: security
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata:
  name: edge
  parent:
    kind: ReleaseTrack
    name: edge-track
spec:
  description: One process on a local environment bound to node-b.
---
apiVersion: lowops.manifests.v1
kind: Application
metadata:
  name: probe
  parent:
    kind: ApplicationSet
    name: edge
spec:
  image: registry.example.com/edge/probe
  run:
    command: ["sleep", "120"]
"""


def _server(data_dir: Path, database_url: str, node: str) -> tuple[Services, Engine, Wakeups]:
    services = open_services(data_dir, database_url)
    services.node = node
    engine = Engine(services, poll=POLL)
    engine.node.register()
    wakeups = Wakeups(services, engine.take)
    return services, engine, wakeups


def _idle(engine: Engine) -> None:
    """Until the engine's start-up passes (and the jobs they started) are over."""
    deadline = time.monotonic() + 30
    seen = -1
    while time.monotonic() < deadline:
        if engine.passes == seen and not engine.busy():
            return
        seen = engine.passes
        time.sleep(0.5)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_approval_on_server_a_starts_the_deployment_on_server_b_without_a_poll(
        tmp_path, database_url):
    a, engine_a, wakeups_a = _server(tmp_path / "a", database_url, "node-a")
    b, engine_b, wakeups_b = _server(tmp_path / "b", database_url, "node-b")
    manifests.apply(a, PLATFORM, [("edge.yaml", MANIFESTS)], str(tmp_path))
    assert Node(b.db, "node-b", 30).serves("edge")  # edge runs on node-b only
    try:
        for wakeups, engine in ((wakeups_a, engine_a), (wakeups_b, engine_b)):
            wakeups.start()
            engine.start()
        _idle(engine_b)
        versions.record_version(a, CI, "probe", "registry.example.com/edge/probe:1.0.0",
                                "0a1b2c3d")
        ref = parse_ref(releases.create_release(a, RELEASE_MANAGER, "edge")["release"])
        for approver in (QA, PRODUCT, SECURITY):
            promotions.approve(a, approver, ref)
        deadline = time.monotonic() + 60
        while release_status(a, ref).state != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)

        status = release_status(a, ref)
        assert status.state == "completed", status.summary
        log = tmp_path / "b" / "local" / "edge" / "probe.log"
        assert "infrastream starts probe 1.0.0" in log.read_text()
        assert not (tmp_path / "a" / "local" / "edge").exists()

        # its processes live on node-b's machine: only node-b's server can tear it down
        with pytest.raises(Conflict) as refused:
            teardown(a, PLATFORM, "edge", "done with the probe")
        assert refused.value.reason == (
            "edge runs on node 'node-b' (a local environment's processes live on its "
            "machine): tear it down through the server of node 'node-b', this one is "
            "'node-a'")
        assert teardown(b, PLATFORM, "edge", "done with the probe").release == \
            f"edge/{ref.name}"
        assert LocalTarget(tmp_path / "b").status(default_environment("edge")) == ()
    finally:
        for wakeups, engine in ((wakeups_a, engine_a), (wakeups_b, engine_b)):
            wakeups.stop()
            engine.stop()
        LocalTarget(tmp_path / "b").teardown(default_environment("edge"))
        a.db.dispose()
        b.db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_change_recorded_on_server_a_reaches_the_observers_on_server_b(
        tmp_path, database_url):
    """What follows a release on B (a held status read, `api.watching`) hears of a change
    A recorded: A's observers are told locally, A's announcer sends `infrastream_changed`,
    and B's listener passes it on to B's observers, naming the release that changed; and the
    other way round."""
    a = open_services(tmp_path / "a", database_url)
    b = open_services(tmp_path / "b", database_url)
    a.node, b.node = "node-a", "node-b"
    wakeups_a, wakeups_b = Wakeups(a), Wakeups(b)
    wakeups_a.start()
    wakeups_b.start()
    heard_on_a: list[str | None] = []
    heard_on_b: list[str | None] = []
    a.listeners.append(heard_on_a.append)
    b.listeners.append(heard_on_b.append)
    try:
        deadline = time.monotonic() + 20
        while "shop/v1" not in heard_on_b and time.monotonic() < deadline:
            a.changed("shop/v1")  # again until B listens (its LISTEN may not be in place yet)
            time.sleep(0.05)
        assert "shop/v1" in heard_on_b, "B's observers never heard of A's change of shop/v1"
        assert None not in heard_on_b, "a change of one release reached B as 'anything'"
        # B's change of anything goes the other way, as "anything"
        b.notify()
        deadline = time.monotonic() + 20
        while None not in heard_on_a and time.monotonic() < deadline:
            time.sleep(0.05)
        assert None in heard_on_a, "A's observers never heard of B's change"
    finally:
        wakeups_a.stop()
        wakeups_b.stop()
        a.db.dispose()
        b.db.dispose()
