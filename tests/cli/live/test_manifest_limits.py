"""The server's apply refuses hostile manifests with located diagnostics and stores nothing.

`infrastream apply` sends the text of the files to a real `infrastream serve`, which validates
them with the same loader as `infrastream validate`: a manifest nested too deep, an integer of
5000 digits, a billion laughs or an expiry of 10^20 hours each come back as one diagnostic
(the server's RFC 9457 problem carries it), the server keeps answering, and nothing is applied.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from live_server import Server, one_line_error

pytestmark = pytest.mark.timeout(90)

HEAD = "apiVersion: lowops.manifests.v1\nkind: {kind}\nmetadata:\n  name: {name}\n"
TRACK = HEAD.format(kind="ReleaseTrack", name="limits-track") + (
    "spec:\n  releaseStages:\n    - environments: [limits-env]\n      approvals:\n"
    "        - {role: qa, expiresAfter: EXPIRY}\n")

HOSTILE = [
    pytest.param(HEAD.format(kind="Environment", name="limits-env")
                 + "  labels: " + "[" * 500 + "]" * 500 + "\n", "too-deep", 5, 73,
                 id="a manifest nested 500 levels deep"),
    pytest.param(HEAD.format(kind="Environment", name="limits-env")
                 + "  labels: {build: " + "9" * 5000 + "}\n", "too-large", 5, 19,
                 id="a 5000-digit integer"),
    pytest.param(HEAD.format(kind="Environment", name="limits-env") + "  annotations:\n"
                 "    a: &a lol\n" + "".join(
                     f"    {chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9)
                     + "]\n" for i in range(9)), "too-large", None, None,
                 id="a billion laughs"),
    pytest.param(TRACK.replace("EXPIRY", "99999999999999999999h"), "invalid-duration", 9, 36,
                 id="an expiry of 10^20 hours"),
    pytest.param(TRACK.replace("expiresAfter: EXPIRY", "count: '3'"), "wrong-type", 9, 29,
                 id="a count in quotes"),
]


@pytest.mark.parametrize(("text", "code", "line", "column"), HOSTILE)
def test_apply_refuses_a_hostile_manifest_at_its_location_and_stores_nothing(
    cli, server: Server, tmp_path: Path, text: str, code: str, line: int | None,
    column: int | None,
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("apply", str(path))
    assert one_line_error(result, after_diagnostics=True) == (
        "error: the manifests are invalid; nothing was applied")
    (diagnostic, *_hint) = [ln for ln in result.err.splitlines() if ": error[" in ln]
    assert f": error[{code}] " in diagnostic
    if line is not None:
        assert diagnostic.startswith(f"{path}:{line}:{column}: error[{code}] ")

    headers = {"Authorization": f"Bearer {server.admin_token}"}
    answer = httpx.post(f"{server.url}/api/v1/manifests", headers=headers, timeout=30,
                        json={"sources": [{"source": "hostile.yaml", "text": text}]})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert code in answer.text
    stored = httpx.get(f"{server.url}/api/v1/manifests", headers=headers, timeout=30).json()
    assert [m for m in stored if m["name"].startswith("limits-")] == []
    assert httpx.get(f"{server.url}/api/v1/healthz", timeout=10).status_code == 200
