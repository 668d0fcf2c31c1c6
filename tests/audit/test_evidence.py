"""An auditor checks an evidence pack with nothing but the file and the exported public key.

On SQLite and PostgreSQL: a release travels to production on the noop target (a rejection,
then QA, Product and Security sign off); its pack is written to a file, read back and
verified offline; one changed byte in that file is named precisely; another key is refused.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infrastream.api.app import create_app
from infrastream.api.routes_evidence import router
from infrastream.domain.evidence import key_id, load_public_key, public_pem, verify_pack
from infrastream.domain.release import content_digest
from infrastream.service import promotions
from infrastream.service.auditing import evidence, signing
from infrastream.service.identity import bootstrap_admin

sys.path.insert(0, str(Path(__file__).parent.parent / "engine"))
from story import PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story

STAGING_CHECKS = "        - type: integration-tests\n        - type: http\n        - type: soak\n"


@pytest.fixture
def story(tmp_path, database_url, monkeypatch):
    """The `init` example on the noop target; staging keeps only its 1 s soak (the other
    checks need a running process, which noop does not start)."""
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    story = Story.begin(tmp_path, database_url, target="noop", soak="1s")
    track = story.repo / "manifests" / "track.yaml"
    assert STAGING_CHECKS in track.read_text(), "the example track changed"
    track.write_text(track.read_text().replace(STAGING_CHECKS, "        - type: soak\n"))
    story.apply_manifests()
    story.record_versions("1.0.0")
    yield story
    story.finish()


def _completed_release(story: Story):
    release = story.cut_release()
    story.start_engine()
    story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    story.wait_until(release, lambda s: s["stages"][1]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    promotions.reject(story.services, SECURITY, release, "CVE-2026-1234 in the base image")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    promotions.approve(story.services, QA, release, comment="regression suite green")
    promotions.approve(story.services, PRODUCT, release, comment="go")
    promotions.approve(story.services, SECURITY, release, comment="base image patched")
    story.wait_until(release, lambda s: s["state"] == "completed")
    return release


def key_id_of_pem(pem: bytes) -> str:
    return key_id(load_public_key(pem))


def _written(pack: dict, path: Path) -> Path:
    path.write_text(json.dumps(pack, indent=2))
    return path


def _flip_one_byte(path: Path, inside: bytes, occurrence: int = 0) -> dict:
    """Change the last character of the `occurrence`-th `inside` in the file; parse again."""
    data = bytearray(path.read_bytes())
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(inside, at + 1)
    position = at + len(inside) - 1
    data[position] = ord("X") if data[position] != ord("X") else ord("Y")
    return json.loads(bytes(data))


def test_an_evidence_pack_of_a_completed_release_verifies_offline_with_the_public_key(
        story, tmp_path):
    release = _completed_release(story)
    public_key = signing.public_key_pem(story.services).encode()
    pack = json.loads(_written(evidence.build_evidence(story.services, release),
                               tmp_path / "evidence.json").read_text())

    verdict = verify_pack(pack, public_key)
    assert verdict.ok, verdict.reason
    signer = pack["signature"]["keyId"]
    assert verdict.reason.startswith(f"the pack is intact: signed by key {signer}")

    assert pack["release"]["ref"] == "shop/v1" and pack["release"]["state"] == "completed"
    assert pack["release"]["digest"] == content_digest(pack["release"]["content"])
    assert pack["digestCheck"]["matches"] is True
    versions = pack["release"]["content"]["versions"]
    assert {app: v["version"] for app, v in versions.items()} == {
        "api": "1.0.0", "web": "1.0.0", "worker": "1.0.0"}
    assert [s["state"] for s in pack["stages"]] == ["succeeded"] * 3
    assert {d["environment"] for d in pack["deployments"]} == {
        "development", "staging", "production"}
    assert all(d["state"] == "healthy" for d in pack["deployments"])
    decisions = [(d["decision"], d["user"], d["role"], d["comment"]) for d in pack["decisions"]]
    assert decisions == [
        ("reject", "sam", "security", "CVE-2026-1234 in the base image"),
        ("approve", "quinn", "qa", "regression suite green"),
        ("approve", "paula", "product", "go"),
        ("approve", "sam", "security", "base image patched"),
    ]
    assert [d["request"] for d in pack["decisions"]] == [1, 2, 2, 2]
    actions = [e["action"] for e in pack["audit"]]
    assert actions[0] == "release.create" and actions[-1] == "release.complete"
    assert {"approval.reject", "approval.grant", "promotion.request"} <= set(actions)
    assert all(e["objectId"] == "shop/v1" for e in pack["audit"])
    assert pack["checkpoint"]["seq"] >= pack["audit"][-1]["seq"]
    assert pack["publicKey"]["pem"].encode() == public_key

    api_env = pack["release"]["content"]["manifests"]["applications"]["api"]["spec"]["env"]
    secret = [v for v in api_env if v.get("secret")]
    assert secret and all(v.get("value") is None for v in secret)

    markdown = evidence.render_markdown(pack)
    assert "# Evidence pack: release shop/v1" in markdown
    production = pack["stages"][2]["name"]
    assert f"| {production} | approve | quinn | qa |" in markdown
    assert "| reject | sam | security |" in markdown and "regression suite green" in markdown
    assert "## Stages" in markdown and "## Checks" in markdown


def test_one_changed_byte_in_a_written_pack_is_named_by_the_verifier(story, tmp_path):
    release = _completed_release(story)
    public_key = signing.public_key_pem(story.services).encode()
    path = _written(evidence.build_evidence(story.services, release), tmp_path / "pack.json")
    assert verify_pack(json.loads(path.read_text()), public_key).ok

    comment = verify_pack(_flip_one_byte(path, b"regression suite green"), public_key)
    assert not comment.ok
    assert comment.problems == (
        f"the signature does not verify with the given key {key_id_of_pem(public_key)}: "
        "decisions[1] (approve by quinn) was altered after signing",)

    version = verify_pack(_flip_one_byte(path, b'"version": "1.0.0'), public_key)
    assert not version.ok
    assert "release.content was altered after signing" in version.problems[0]
    assert version.problems[1].startswith("the release content does not match its digest")

    grant = _flip_one_byte(path, b"regression suite green", occurrence=1)
    in_audit = verify_pack(grant, public_key)
    seq = next(e["seq"] for e in grant["audit"] if e["action"] == "approval.grant")
    assert not in_audit.ok
    assert f"(entry {seq}, approval.grant) was altered after signing" in in_audit.problems[0]
    assert in_audit.problems[1] == (f"audit entry {seq} (approval.grant) does not match its "
                                    "hash: it was edited")


def test_a_pack_verified_with_a_different_key_fails(story):
    release = story.cut_release()
    pack = evidence.build_evidence(story.services, release)
    other = public_pem(Ed25519PrivateKey.generate().public_key())
    verdict = verify_pack(pack, other)
    assert not verdict.ok
    assert verdict.reason.startswith(
        f"the signature does not verify with the given key {key_id_of_pem(other.encode())}: "
        f"the pack says it was signed by key {pack['signature']['keyId']}")

    forged = dict(pack, publicKey={**pack["publicKey"], "pem": other})
    assert not verify_pack(forged, other).ok, "the embedded key is never trusted"
    assert not verify_pack(pack, "not a key").ok


@contextmanager
def _server(app) -> Iterator[str]:
    """The app on a real uvicorn server on a free loopback port, as tests/api does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_api_serves_the_public_key_the_export_checkpoints_and_evidence(story):
    token = bootstrap_admin(story.services)
    app = create_app(story.services)
    app.include_router(router)  # what api/app.py does once the router is wired in
    release = story.cut_release()
    with _server(app) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as client:
        assert client.get("/api/v1/audit/public-key", headers={"Authorization": ""}
                          ).status_code == 401
        key = client.get("/api/v1/audit/public-key")
        assert key.status_code == 200 and key.text.startswith("-----BEGIN PUBLIC KEY-----")

        created = client.post("/api/v1/audit/checkpoints")
        assert created.status_code == 201 and created.json()["created"] is True
        again = client.post("/api/v1/audit/checkpoints")
        assert again.status_code == 200
        assert again.json() == {"created": False, "checkpoint": created.json()["checkpoint"]}

        exported = client.get("/api/v1/audit/export", params={"since": "2000-01-01T00:00:00Z"})
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert lines[-1] == {"type": "checkpoint", **created.json()["checkpoint"]}
        assert {line["type"] for line in lines[:-1]} == {"entry"}

        pack = client.get(f"/api/v1/releases/{release.app_set}/{release.name}/evidence")
        assert pack.status_code == 200 and verify_pack(pack.json(), key.content).ok
        markdown = client.get(f"/api/v1/releases/{release}/evidence",
                              params={"format": "markdown"})
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text.startswith("# Evidence pack: release shop/v1")
        assert client.get("/api/v1/releases/shop/v9/evidence").status_code == 404
