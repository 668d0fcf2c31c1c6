"""The Manifests page: each object's origin, each source's state with the diagnostics of a
refused commit, and a Sync button for platform engineers only."""

from __future__ import annotations

import subprocess

from portal_site import Site, csrf_of

from infrastream.service import sources

BROKEN = """\
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: qa-lab}
spec: {tier: qa, target: {type: noop}}
"""


def test_the_manifests_page_shows_origins_and_a_refused_commit_and_who_may_sync(
        quiet_site: Site, tmp_path):
    remote, work = tmp_path / "m.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
    (work / "lab.yaml").write_text(BROKEN)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=Dana", "-c", "user.email=d@example.com", "commit",
                    "-q", "-m", "a lab"], cwd=work, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=work, check=True)
    sources.add_source(quiet_site.services, quiet_site.user("pat"), "lab", str(remote))

    pat = quiet_site.signed_in("pat")
    page = pat.get("/portal/manifests").text
    assert 'data-object="Application/api"' in page and "apply" in page
    assert 'data-source="lab"' in page and "Sync now" in page
    synced = pat.post("/portal/manifests/sources/lab/sync",
                      data={"csrf": csrf_of(pat, "/portal/manifests")})
    assert synced.status_code == 303
    page = pat.get("/portal/manifests").text
    assert "lab.yaml:4:14: error[invalid-value]" in page
    assert "stays in force" in page

    rita = quiet_site.signed_in("rita")
    assert "Sync now" not in rita.get("/portal/manifests").text
    forged = rita.post("/portal/manifests/sources/lab/sync", data={"csrf": "nope"})
    assert forged.status_code == 403
