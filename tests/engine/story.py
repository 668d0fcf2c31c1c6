"""The vocabulary of the release stories: people, manifests, waiting for the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infrastream.cli.init_cmd import write_example
from infrastream.cli.manifest_files import read_sources
from infrastream.domain.roles import Principal
from infrastream.service import manifests, releases, versions
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.views.release_status import release_status


def person(name: str, *roles: str) -> Principal:
    return Principal(name, frozenset(roles))


PLATFORM = person("pat", "platform")
CI = person("ci-bot", "developer")
RELEASE_MANAGER = person("rita", "release-manager")
QA = person("quinn", "qa")
PRODUCT = person("paula", "product")
SECURITY = person("sam", "security")
DEVELOPER = person("dev", "developer")


def example_repo(directory: Path, *, target: str | None = None, soak: str = "1s") -> Path:
    """The `init` example, with a short soak and optionally another target type."""
    repo = directory / "shop"
    write_example(repo)
    track = repo / "manifests" / "track.yaml"
    track.write_text(track.read_text().replace("duration: 30s", f"duration: {soak}"))
    if target:
        envs = repo / "manifests" / "environments.yaml"
        envs.write_text(envs.read_text().replace("type: local", f"type: {target}"))
    return repo


@dataclass
class Story:
    services: Services
    repo: Path
    engine: Engine | None = None
    started: list[Engine] = field(default_factory=list)

    @classmethod
    def begin(cls, tmp_path: Path, database_url: str, **repo_options: Any) -> Story:
        services = open_services(tmp_path / "data", database_url)
        return cls(services, example_repo(tmp_path, **repo_options))

    def apply_manifests(self) -> dict[str, Any]:
        sources, _ = read_sources([str(self.repo)])
        return manifests.apply(self.services, PLATFORM, sources, str(self.repo))

    def record_versions(self, tag: str) -> None:
        for app in ("api", "web", "worker"):
            versions.record_version(self.services, CI, app,
                                    f"registry.example.com/shop/{app}:{tag}", "0a1b2c3d")

    def cut_release(self) -> ReleaseRef:
        created = releases.create_release(self.services, RELEASE_MANAGER, "shop")
        return parse_ref(created["release"])

    def start_engine(self) -> Engine:
        self.engine = Engine(self.services, poll=0.5)
        self.engine.start()
        self.started.append(self.engine)
        return self.engine

    def status(self, ref: ReleaseRef) -> dict[str, Any]:
        return release_status(self.services, ref)

    def wait_until(self, ref: ReleaseRef, condition: Callable[[dict[str, Any]], bool],
                   timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status = self.status(ref)
        while time.monotonic() < deadline:
            status = self.status(ref)
            if condition(status):
                return status
            time.sleep(0.1)
        raise AssertionError(f"timed out; release is at: {status['summary']}")

    def to_production_gate(self, ref: ReleaseRef) -> None:
        """Let the release succeed in development and staging, then request production."""
        from infrastream.service import promotions

        self.wait_until(ref, lambda s: s["stages"][0]["state"] == "succeeded")
        promotions.promote(self.services, RELEASE_MANAGER, ref)
        self.wait_until(ref, lambda s: s["stages"][1]["state"] == "succeeded")
        promotions.promote(self.services, RELEASE_MANAGER, ref)

    def to_production(self, ref: ReleaseRef) -> None:
        """The whole release lane: QA, Product and Security sign off production."""
        from infrastream.service import promotions

        self.to_production_gate(ref)
        for approver in (QA, PRODUCT, SECURITY):
            promotions.approve(self.services, approver, ref)
        self.wait_until(ref, lambda s: s["state"] == "completed")

    def stage(self, ref: ReleaseRef, index: int) -> dict[str, Any]:
        return self.status(ref)["stages"][index]

    def finish(self) -> None:
        for engine in self.started:
            engine.stop()
        local = self.services.targets.get_target("local")
        for env in ("development", "staging", "production"):
            from infrastream.manifests.environment import default_environment

            local.teardown(default_environment(env))
        self.services.db.dispose()
