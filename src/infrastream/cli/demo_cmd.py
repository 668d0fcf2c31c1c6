"""`infrastream demo`: the whole product on this machine in one command.

It scaffolds the example shop, starts the server on the embedded default (SQLite in a data
directory), applies the manifests, creates a demo user for every role, records versions and
cuts release shop/v1, then drives it through development and staging so that it waits for
the production sign-offs of QA, Product and Security. What to type next is printed.
Every step goes through the same service layer (and authorization) as the API.

A busy port is found before anything starts (one line, exit 1). When the demo stops (Ctrl-C,
SIGTERM) it tears down every environment it deployed to, so no application process outlives
it, unless `--keep` (then `infrastream demo --data-dir DIR` adopts them again). Every process
the demo's local target starts carries `INFRASTREAM_LOCAL_OWNER=<data dir>/data/local/<env>`.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .init_cmd import write_example
from .output import CliError, console

if TYPE_CHECKING:
    from infrastream.service.context import Services

DEMO_USERS = [
    ("pat", ["platform"]), ("dana", ["developer"]), ("rita", ["release-manager"]),
    ("quinn", ["qa"]), ("paula", ["product"]), ("sam", ["security"]),
    ("ivan", ["incident-commander"]), ("iris", ["incident-commander"]),
]


def demo(
    port: int = typer.Option(8420, "--port", help="TCP port of the demo server."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Keep the demo here [default: a new temporary directory]."),
    keep: bool = typer.Option(False, "--keep", help="Leave the demo's applications running "
                              "when the demo stops [default: stop them]."),
) -> None:
    """Start a demo server with the example product and a release waiting for production
    sign-off (this is a demo: its users and tokens are printed for you)."""
    from infrastream.api.server import serve
    from infrastream.portal import mount_portal
    from infrastream.service import identity, manifests, releases, versions
    from infrastream.service.context import open_services

    from .manifest_files import read_sources

    _require_free(port)
    root = data_dir or Path(tempfile.mkdtemp(prefix="infrastream-demo-"))
    repo = root / "shop"
    if not repo.exists():
        write_example(repo)
    services = open_services(root / "data")
    admin_token = identity.bootstrap_admin(services)
    admin = identity.authenticate(services, admin_token) if admin_token else None
    tokens: dict[str, str] = {}
    saved = root / "demo-tokens.txt"
    if admin is None and saved.exists():  # a demo started again on its data directory
        tokens = dict(line.split(" ", 1) for line in saved.read_text().splitlines() if line)
    if admin is not None:  # a fresh demo: set everything up
        for name, roles in DEMO_USERS:
            tokens[name] = identity.create_user(services, admin, name, roles,
                                                description="demo user").token
        sources, _ = read_sources([str(repo)])
        manifests.apply(services, identity.get_user(services, "pat"), sources, str(repo))
        for app in ("api", "web", "worker"):
            versions.record_version(services, identity.get_user(services, "dana"), app,
                                    f"registry.example.com/shop/{app}:1.0.0", "4f2a9c1")
        releases.create_release(services, identity.get_user(services, "rita"), "shop")
        threading.Thread(target=_drive_to_production_gate, args=(services,), daemon=True,
                         name="demo-driver").start()
        (root / "demo-tokens.txt").write_text(
            "".join(f"{name} {token}\n" for name, token in tokens.items()))
    admin_saved = root / "data" / identity.BOOTSTRAP_FILE
    admin_token = admin_token or (admin_saved.read_text().strip() if admin_saved.exists()
                                  else None)
    url = f"http://127.0.0.1:{port}"

    def ready() -> None:
        console.print(f"\n[bold]Infrastream demo[/] — this is a demo: users and tokens are "
                      f"printed for you.\n  portal   {url}/portal/  (one-click sign-in as any demo "
                      f"user)\n  server   {url}  (OpenAPI: {url}/docs)\n"
                      f"  data     {root}\n  tokens   {root / 'demo-tokens.txt'}\n")
        if admin_token:
            console.print(f"  {'admin':6} {'admin':20} {admin_token}", markup=False)
        for name, roles in DEMO_USERS:
            if name in tokens:
                console.print(f"  {name:6} {', '.join(roles):20} {tokens[name]}", markup=False)
        console.print(
            "\nRelease shop/v1 is on its way: development → staging (integration tests, HTTP "
            "check, 30 s soak) → production (needs QA, Product and Security).\nOpen the "
            "portal, sign in as quinn, paula and sam in turn and approve it; or with the CLI "
            "(README, \"Quickstart\"):\n"
            f"  export PATH=\"{sys.prefix}/bin:$PATH\"\n"
            f"  export INFRASTREAM_URL={url}\n"
            "  export INFRASTREAM_TOKEN=<admin token>; infrastream release list\n"
            "  export INFRASTREAM_TOKEN=<quinn's token>; infrastream release approve shop/v1\n"
            "  infrastream release status shop/v1 --wait\n", markup=False)

    try:
        serve(services, "127.0.0.1", port, ready=ready,
              extend=lambda app, services: mount_portal(app, services, demo_tokens=tokens))
    finally:
        if not keep:
            _stop_everything(services)


def _require_free(port: int) -> None:
    """Refuse a busy port before anything starts (no banner, no process)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise CliError(f"port {port} is busy (another demo or server?); stop it or use "
                           "--port") from None


def _stop_everything(services: Services) -> None:
    """Tear down every environment the demo deployed to (as pat, audited); a deployment cut
    short by the stop is torn down by its target directly."""
    from infrastream.domain.errors import InfrastreamError
    from infrastream.service import identity, teardown
    from infrastream.service.records.manifests import current_bundle

    console.print("stopping the demo's applications (use --keep to leave them running)…",
                  markup=False)
    pat = identity.get_user(services, "pat")
    bundle = current_bundle(services)
    for environment in bundle.used_environments():
        try:
            teardown.teardown(services, pat, environment, "the demo stopped")
        except InfrastreamError:
            manifest = bundle.environment(environment)
            try:
                services.targets.for_environment(manifest).teardown(manifest)
            except InfrastreamError as exc:
                console.print(f"could not stop {environment}: {exc}", markup=False)
    services.db.dispose()


def _drive_to_production_gate(services: Services) -> None:
    """Promote shop/v1 as the release manager until it waits for production sign-off."""
    from infrastream.domain.errors import Conflict
    from infrastream.service import identity, promotions
    from infrastream.service.records.releases import ReleaseRef

    rita = identity.get_user(services, "rita")
    ref = ReleaseRef("shop", "v1")
    for _stage in ("staging", "production"):
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                promotions.promote(services, rita, ref)
                break
            except Conflict:
                time.sleep(1)
