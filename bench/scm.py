"""Benchmark: the pull-request gate, from a signed webhook to the commit status on the host.

Setup. A real Infrastream API server (uvicorn on a loopback port, in a thread) with its
engine (`Engine(services, poll=5.0)`: the 5 s poll is on purpose, the gate must be driven by
wake-ups, so no figure below can be the poll interval), on SQLite in a temporary data
directory; the fake GitHub of `infrastream.scm.fake_github` on its own port (it checks every
request against GitHub's REST description); one connection; 10 Applications, each in its
own repository `bench-org/app-N` with a `pullRequestImage` template, released together,
and a pre-release lane on one `noop` environment (deploys take no time: what is measured is
the gate itself). Payloads are the real `pull_request` `opened` example of
`@octokit/webhooks-examples` (tests/npm), with repository, number and head commit changed,
signed as GitHub signs them.

It measures:

1. webhook → pending: a pull request opened for an Application *without* a template (so
   the first status is `pending: waiting for the build of …`), one at a time, 50 times:
   from the start of the POST to the moment the fake GitHub receives the status request
   for that commit (same clock): median, p95 and max;
2. a burst of 100 `opened` events (10 per repository, sent by 8 threads at once): time until
   every one is accepted, until every head has a final status on the host, events/s; then
   it checks that nothing was lost: 100 heads, 100 pre-release runs passed, 100 `success`
   statuses on the host, no status left undelivered in the outbox, no contract violation;
   and how many status requests the host took in all (queue positions are redrawn at most
   every 10 s per head, so a queue of 100 does not cost thousands);
3. a floor measured in the same run: the two HTTP hops that latency cannot avoid, one POST
   to the server (`GET /api/v1/healthz` on the same connection pool) plus one commit status
   POSTed to the fake GitHub through the provider. It prints latency / floor.

It never asserts timings; it exits 1 only when a status was lost or the host saw a request
GitHub would refuse.

Run: `.venv/bin/python bench/scm.py` (about a minute; `./dev.sh bench` runs it with the
others; `npm ci --prefix tests/npm` first for the payloads and GitHub's description).
"""

from __future__ import annotations

import argparse
import copy
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = (ROOT / "tests" / "npm" / "node_modules" / "@octokit" / "webhooks-examples"
            / "api.github.com" / "index.json")
SECRET = "bench-webhook-secret"
APPS = 10
LATENCY_SAMPLES = 50
BURST = 100


def manifests() -> str:
    docs = [
        {"apiVersion": "lowops.manifests.v1", "kind": "Environment",
         "metadata": {"name": "development"},
         "spec": {"tier": "development", "target": {"type": "noop"}}},
        {"apiVersion": "lowops.manifests.v1", "kind": "ReleaseTrack",
         "metadata": {"name": "bench-track"},
         "spec": {"preReleaseStages": [{"environments": ["development"]}],
                  "releaseStages": [{"environments": ["development"]}]}},
        {"apiVersion": "lowops.manifests.v1", "kind": "ApplicationSet",
         "metadata": {"name": "bench", "parent": {"kind": "ReleaseTrack",
                                                  "name": "bench-track"}}},
    ]
    for n in range(APPS + 1):  # app-10 has no template: its PRs wait for their build
        spec: dict[str, Any] = {"image": f"registry.example.com/bench/app-{n}",
                                "source": {"scm": "github", "repository": f"bench-org/app-{n}"}}
        if n < APPS:
            spec["pullRequestImage"] = f"registry.example.com/bench/app-{n}:pr-{{number}}-{{sha7}}"
        docs.append({"apiVersion": "lowops.manifests.v1", "kind": "Application",
                     "metadata": {"name": f"app-{n}",
                                  "parent": {"kind": "ApplicationSet", "name": "bench"}},
                     "spec": spec})
    return "\n---\n".join(json.dumps(d) for d in docs)


def run() -> int:
    import httpx
    import uvicorn
    from sqlalchemy import func, select

    from infrastream.api.app import create_app
    from infrastream.domain.roles import Principal
    from infrastream.scm import CommitStatus, GitHubConfig, GitHubProvider, StatusState
    from infrastream.scm.fake_github import FakeGitHub
    from infrastream.scm.fake_server import Reply, Request
    from infrastream.scm.github_webhooks import signature
    from infrastream.service import manifests as manifest_service
    from infrastream.service import scm_connections
    from infrastream.service.context import open_services
    from infrastream.service.engine.loop import Engine
    from infrastream.store.tables import prerelease_runs, scm_statuses

    if not EXAMPLES.is_file():
        print(f"{EXAMPLES} is missing: run `npm ci --prefix tests/npm`", file=sys.stderr)
        return 2
    opened = next(p for e in json.loads(EXAMPLES.read_text("utf-8")) if e["name"] ==
                  "pull_request" for p in e["examples"] if p["action"] == "opened")

    class TimedGitHub(FakeGitHub):
        """The fake GitHub, noting when each commit's first status arrived."""

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.first: dict[str, float] = {}
            self.final: dict[str, float] = {}

        def handle(self, request: Request) -> Reply:
            reply = super().handle(request)
            if request.method == "POST" and "/statuses/" in request.path and reply.status < 300:
                at = time.perf_counter()
                sha = request.path.rsplit("/", 1)[-1]
                self.first.setdefault(sha, at)
                if (request.json() or {}).get("state") in ("success", "failure", "error"):
                    self.final.setdefault(sha, at)
            return reply

    repositories = [f"bench-org/app-{n}" for n in range(APPS + 1)]
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-scm-") as directory, \
            TimedGitHub(repositories=repositories) as github:
        services = open_services(Path(directory) / "data")
        platform = Principal("pat", frozenset({"platform"}))
        manifest_service.apply(services, platform, [("bench.yaml", manifests())], directory)
        engine = Engine(services, poll=5.0)
        engine.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(services), log_level="warning",
                                               access_log=False, lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        scm_connections.add_connection(services, platform, "github", "github",
                                       token=github.token, webhook_secret=SECRET,
                                       base_url=github.base_url, public_url=url)
        client = httpx.Client(base_url=url, timeout=30)

        def deliver(repository: str, number: int, head: str) -> httpx.Response:
            payload = copy.deepcopy(opened)
            payload["repository"]["full_name"] = repository
            payload["number"] = number
            payload["pull_request"].update(number=number, merged=False)
            payload["pull_request"]["head"]["sha"] = head
            body = json.dumps(payload).encode()
            return client.post("/api/v1/scm/github/webhook", content=body, headers={
                "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature(SECRET, body),
                "Content-Type": "application/json"})

        def wait(done: Any, timeout: float) -> bool:
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                if done():
                    return True
                time.sleep(0.001)
            return False

        try:
            # 3. the floor: one request to the server, one status to the host
            provider = GitHubProvider(GitHubConfig(base_url=github.base_url,
                                                   token=github.token, webhook_secret="x"))
            floors = []
            for i in range(LATENCY_SAMPLES):
                began = time.perf_counter()
                client.get("/api/v1/healthz")
                provider.report_status(repositories[0], uuid.uuid4().hex + "0" * 8,
                                       CommitStatus(StatusState.PENDING, f"floor {i}"))
                floors.append(time.perf_counter() - began)
            provider.close()
            floor = statistics.median(floors)

            # 1. webhook -> pending
            latencies = []
            for i in range(LATENCY_SAMPLES):
                head = uuid.uuid4().hex + uuid.uuid4().hex[:8]
                began = time.perf_counter()
                answer = deliver(repositories[APPS], 1000 + i, head)
                assert answer.status_code == 202, answer.text
                if not wait(lambda h=head: h in github.first, 30):
                    print(f"no status for {head} within 30 s", file=sys.stderr)
                    return 1
                latencies.append(github.first[head] - began)
            latencies.sort()
            median = statistics.median(latencies)
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            print(f"scm benchmark: SQLite, engine poll 5 s, fake GitHub on loopback, "
                  f"{APPS} apps in {APPS} repositories")
            print(f"floor (server round trip + one status POST): median {floor * 1000:.1f} ms")
            print(f"webhook → pending status on the host ({LATENCY_SAMPLES}×): median "
                  f"{median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max "
                  f"{latencies[-1] * 1000:.1f} ms; median / floor = {median / floor:.1f}×")

            # 2. the burst
            requests_before = len(github.requests)
            heads = [(repositories[n % APPS], 1 + n // APPS, uuid.uuid4().hex + "burst000")
                     for n in range(BURST)]
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda h: deliver(*h), heads))
            accepted = time.perf_counter() - began
            refused = [a.text for a in answers if a.status_code != 202]
            finished = wait(lambda: all(h in github.final for _, _, h in heads), 300)
            elapsed = time.perf_counter() - began
            final = {h: github.statuses(r, h)[-1]["state"] if github.statuses(r, h) else None
                     for r, _, h in heads}

            def undelivered_count() -> int:
                with services.db.connect() as conn:
                    return int(conn.execute(select(func.count()).where(
                        (scm_statuses.c.outcome != "delivered")
                        & scm_statuses.c.sha.like("%burst000"))).scalar_one())

            # the host has a status a moment before its outbox row is marked delivered
            wait(lambda: undelivered_count() == 0, 10)
            undelivered = undelivered_count()
            with services.db.connect() as conn:
                runs = dict(conn.execute(
                    select(prerelease_runs.c.state, func.count())
                    .where(prerelease_runs.c.commit.like("%burst000"))
                    .group_by(prerelease_runs.c.state)).all())
            posts = len(github.requests) - requests_before
            successes = sum(1 for s in final.values() if s == "success")
            print(f"burst of {BURST} PR events across {APPS} apps (8 senders): all answered in "
                  f"{accepted:.2f} s ({BURST / accepted:.0f} events/s); every head final on "
                  f"the host after {elapsed:.2f} s ({BURST / elapsed:.1f} runs/s, one "
                  f"environment, one run at a time)")
            print(f"  runs: {runs}; success statuses: {successes}/{BURST}; status requests "
                  f"the host took: {posts} ({posts / BURST:.1f} per head); undelivered: "
                  f"{undelivered}; refused deliveries: {len(refused)}; contract violations: "
                  f"{len(github.violations)}")
            lost = not finished or successes != BURST or undelivered or refused
            if lost or github.violations:
                print("LOST or refused statuses (see above)", file=sys.stderr)
                return 1
            return 0
        finally:
            client.close()
            server.should_exit = True
            thread.join(timeout=10)
            engine.stop()
            services.db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                     epilog="Prints figures and ratios; never asserts timings.")
    parser.parse_args()
    sys.exit(run())
