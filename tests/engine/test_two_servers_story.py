"""Two servers on one PostgreSQL database, local target: each deployment runs on exactly one.

The defect (issue 13): every engine resumed any deployment it found `deploying`, so with two
servers the processes of each deployment were started under both servers' data directories
while the database recorded one deployment.
"""

from __future__ import annotations

import socket

import pytest
from servers import Server, apply, signing_key, target_starts, users, wait_for
from story import example_repo

from infrastream.manifests.environment import default_environment
from infrastream.targets.local import LocalTarget

RELEASES = 3


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_servers_start_each_deployments_processes_under_one_data_dir_only(
        tmp_path, database_url):
    repo = example_repo(tmp_path, soak="1s")
    api = repo / "manifests" / "apps" / "api.yaml"  # a deployment lasts past the other's poll
    api.write_text(api.read_text().replace(
        'command: ["python3", "services/shop_service.py"]',
        'command: ["sh", "-c", "sleep 3 && exec python3 services/shop_service.py"]'))
    key = signing_key()
    first = Server(tmp_path / "a", database_url, node="node-a", key=key)
    second = Server(tmp_path / "b", database_url, node="node-b", key=key)
    try:
        first.start()
        second.start()
        admin = first.client(first.admin_token())
        tokens = users(admin)
        apply(first.client(tokens["pat"]), repo)
        servers = (first, second)
        for number in range(1, RELEASES + 1):  # each release is cut on the other server
            cut = servers[number % 2].client(tokens["ci"])
            for app in ("api", "web", "worker"):
                cut.post(f"/applications/{app}/versions", json={
                    "image": f"registry.example.com/shop/{app}:2.0.{number}"}).raise_for_status()
            servers[number % 2].client(tokens["rita"]).post(
                "/releases", json={"applicationSet": "shop"}).raise_for_status()
            wait_for(servers[(number + 1) % 2].client(tokens["rita"]), f"/releases/shop/v{number}",
                     lambda s: s["stages"][0]["state"] == "succeeded")
        starts = target_starts(servers, "development")
        assert starts == {(f"{n}/development/1", app): 1 for n in range(1, RELEASES + 1)
                          for app in ("api", "web", "worker")}, starts
    finally:
        for server in (first, second):
            server.stop()
            LocalTarget(server.data_dir).teardown(default_environment("development"))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_second_live_server_with_the_same_node_name_refuses_to_start(tmp_path, database_url):
    key = signing_key()
    first = Server(tmp_path / "a", database_url, node="same", key=key)
    second = Server(tmp_path / "b", database_url, node="same", key=key)
    try:
        first.start()
        assert second.launch().wait(timeout=120) != 0
        lines = [line for line in second.log.read_text().splitlines() if "cannot serve" in line]
        assert lines == [f"error: cannot serve: node 'same' is already served by pid "
                         f"{first.process.pid} on {socket.gethostname()}: give each server "
                         f"its own --node-name (INFRASTREAM_NODE_NAME)"], lines
        assert "Traceback" not in second.log.read_text()
    finally:
        first.stop()
        second.stop()
