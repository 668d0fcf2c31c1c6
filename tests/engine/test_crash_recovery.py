"""Killing the server (SIGKILL) mid-promotion loses nothing and duplicates nothing.

A real `infrastream serve` process drives a release through the local target; it is killed
while staging is deploying or verifying, started again on the same data directory, and
finishes the release with exactly one deployment per (release, environment).
"""

from __future__ import annotations

import time

import httpx
import pytest
from servers import Server, signing_key
from sqlalchemy import create_engine, func, select
from story import example_repo

from infrastream.cli.manifest_files import read_sources
from infrastream.manifests.environment import default_environment
from infrastream.store.tables import deployments
from infrastream.targets.local import LocalTarget
from infrastream.targets.local_process import owned_processes


@pytest.fixture
def server(tmp_path, database_url):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = Server(data_dir, database_url, node="solo", key=signing_key())
    yield srv
    srv.stop()
    local = LocalTarget(data_dir)
    for env in ("development", "staging", "production"):
        local.teardown(default_environment(env))


def _release(client: httpx.Client) -> dict:
    response = client.get("/releases/shop/v1")
    response.raise_for_status()
    return response.json()


def _wait(client: httpx.Client, condition, timeout: float = 90, interval: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout
    status = _release(client)
    while time.monotonic() < deadline:
        status = _release(client)
        if condition(status):
            return status
        time.sleep(interval)
    raise AssertionError(f"timed out at: {status['summary']}")


def test_a_server_killed_mid_promotion_finishes_the_release_after_restart_without_duplicates(
        server, tmp_path, database_url):
    repo = example_repo(tmp_path, soak="2s")
    server.start()
    admin = server.client(server.admin_token())
    tokens = {}
    for name, role in [("pat", "platform"), ("ci", "developer"), ("rita", "release-manager"),
                       ("quinn", "qa"), ("paula", "product"), ("sam", "security")]:
        created = admin.post("/users", json={"name": name, "roles": [role]})
        tokens[name] = created.raise_for_status().json()["token"]
    sources, _ = read_sources([str(repo)])
    server.client(tokens["pat"]).post("/manifests", json={
        "sources": [{"source": s, "text": t} for s, t in sources],
        "sourceRoot": str(repo)}).raise_for_status()
    for app in ("api", "web", "worker"):
        server.client(tokens["ci"]).post(f"/applications/{app}/versions", json={
            "image": f"registry.example.com/shop/{app}:2.0.0"}).raise_for_status()
    rita = server.client(tokens["rita"])
    rita.post("/releases", json={"applicationSet": "shop"}).raise_for_status()
    _wait(rita, lambda s: s["stages"][0]["state"] == "succeeded")
    rita.post("/releases/shop/v1/promotions").raise_for_status()
    _wait(rita, lambda s: s["stages"][1]["state"] in ("deploying", "verifying"), interval=0.01)

    server.kill()
    server.start()

    _wait(rita, lambda s: s["stages"][1]["state"] == "succeeded")
    rita.post("/releases/shop/v1/promotions").raise_for_status()
    for approver in ("quinn", "paula", "sam"):
        server.client(tokens[approver]).post("/releases/shop/v1/approvals",
                                               json={}).raise_for_status()
    status = _wait(rita, lambda s: s["state"] == "completed")
    assert status["summary"] == "completed: running in production"

    engine = create_engine(database_url)
    with engine.connect() as conn:
        counts = conn.execute(select(deployments.c.environment, func.count())
                              .group_by(deployments.c.environment)).all()
    engine.dispose()
    assert dict(counts) == {"development": 1, "staging": 1, "production": 1}
    for env in status["stages"]:
        for app in env["environments"][0]["apps"]:
            answer = httpx.get(app["endpoint"] + "/healthz", timeout=5).json()
            assert answer["version"] == "2.0.0"
    assert admin.get("/audit/verify").json()["ok"]
    for env in ("development", "staging", "production"):  # no stray process was left behind
        owned = owned_processes(str(server.data_dir / "local" / env))
        assert len(owned) == 3, (env, owned)
