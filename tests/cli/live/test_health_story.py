"""Health you can trust: kill -9 a development app process and every view says unhealthy
within 10 s (the overview, the environment matrix, `infrastream status`, the API: one stored
fact), then the local target's supervisor restarts it and they all say healthy again."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from live_server import Server

from infrastream.cli.init_cmd import write_example

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _portal(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=f"{server.url}/portal", timeout=30)
    found = CSRF.search(client.get("/sign-in").text)
    assert found is not None
    signed = client.post("/sign-in", data={"csrf": found.group(1), "token": server.ops_token})
    assert signed.status_code == 303, signed.text
    return client


def _health(cli: Callable[..., Any], server: Server, portal: httpx.Client) -> dict[str, str]:
    """What each view says about development's health right now."""
    api = httpx.get(f"{server.url}/api/v1/environments", timeout=30,
                    headers={"Authorization": f"Bearer {server.ops_token}"}).json()
    status = json.loads(cli("status", "-o", "json").out)
    overview = portal.get("/overview/tracks").text
    matrix = portal.get("/environments").text
    return {
        "api": _state(api), "status": _state(status),
        "overview": _health_in(r'data-environment="development" data-health="(\w+)"',
                               overview),
        "matrix": _health_in(r'<tr data-environment="development" data-health="(\w+)"',
                             matrix),
    }


def _health_in(pattern: str, page: str) -> str:
    found = re.search(pattern, page)
    assert found is not None, f"no health of development on the page: {page[:500]}"
    return found.group(1)


def _state(environments: list[dict[str, Any]]) -> str:
    health = next(e for e in environments if e["environment"] == "development")["health"]
    return "none" if health is None else str(health["state"])


def _until(probe: Callable[[], dict[str, str]], wanted: str, seconds: float) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        seen = probe()
        if set(seen.values()) == {wanted} or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def _pid(server: Server, app: str) -> int:
    state = json.loads((server.data_dir / "local" / "development" / "state.json").read_text())
    return int(state["apps"][app]["pid"])


def test_a_killed_process_turns_the_environment_unhealthy_everywhere_and_is_restarted(
        cli, server: Server, tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    write_example(shop)
    assert cli("apply", str(shop)).code == 0
    for app in ("api", "web", "worker"):
        assert cli("version", "record", app, "--image",
                   f"registry.example.com/shop/{app}:1.0.0", "--commit", "abc1234").code == 0
    assert cli("release", "create", "shop").code == 0
    waited = cli("release", "status", "shop/v1", "--wait", "--timeout", "60", "-o", "json")
    assert waited.code == 0, waited
    portal = _portal(server)

    def probe() -> dict[str, str]:
        return _health(cli, server, portal)

    assert _until(probe, "healthy", 30) == dict.fromkeys(
        ("api", "status", "overview", "matrix"), "healthy")

    killed = _pid(server, "web")
    os.kill(killed, signal.SIGKILL)
    assert _until(probe, "unhealthy", 10) == dict.fromkeys(
        ("api", "status", "overview", "matrix"), "unhealthy")

    assert _until(probe, "healthy", 60) == dict.fromkeys(
        ("api", "status", "overview", "matrix"), "healthy")
    assert _pid(server, "web") != killed
    (development,) = [e for e in json.loads(cli("status", "-o", "json").out)
                      if e["environment"] == "development"]
    assert development["health"]["restarts"] == {"web": 1}
    actions = [e["action"] for e in json.loads(
        cli("audit", "list", "--object-id", "development", "-o", "json").out)]
    assert actions.count("environment.health") >= 2
    assert "environment.restart" in actions
    portal.close()

    pids = [_pid(server, app) for app in ("api", "web", "worker")]
    torn = cli("env", "teardown", "development", "--reason", "the story is over")
    assert torn.code == 0, torn
    assert "tore down development (local target; it ran shop/v1)" in torn.out
    assert [e["environment"] for e in json.loads(cli("status", "-o", "json").out)] == []
    assert not (server.data_dir / "local" / "development" / "state.json").exists()
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
