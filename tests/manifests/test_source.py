"""An Application's `source` and image templates, and a track's `releaseOn`: validated like
every other field, with located diagnostics."""

from __future__ import annotations

import pytest

from infrastream.manifests import load_texts
from infrastream.manifests.source import Source, fill_template
from infrastream.manifests.track import ReleaseOn

APP = """apiVersion: lowops.manifests.v1
kind: Application
metadata: {{name: api, parent: {{kind: ApplicationSet, name: shop}}}}
spec:
  image: registry.example.com/shop/api
{extra}
"""


def problems(extra: str) -> list[tuple[str, str]]:
    result = load_texts([("api.yaml", APP.format(extra=extra))])
    return [(d.code, d.message) for d in result.diagnostics if d.is_error]


def test_a_source_with_templates_validates() -> None:
    result = load_texts([("api.yaml", APP.format(extra=(
        "  source: {scm: github, repository: octo-org/shop-api, path: services/api/}\n"
        "  pullRequestImage: registry.example.com/shop/api:pr-{number}-{sha7}\n"
        "  mainlineImage: registry.example.com/shop/api:main-{sha}")))])
    spec = result.bundle.applications["api"].spec
    assert spec.source is not None and spec.source.path == "services/api"
    assert fill_template(spec.pull_request_image or "", sha="ec26c3e57ca3", number=17) == \
        "registry.example.com/shop/api:pr-17-ec26c3e"


@pytest.mark.parametrize(("extra", "expected"), [
    ("  source: {scm: GitHub, repository: a/b}",
     ("invalid-name", "spec.source.scm: `GitHub` is not a valid name")),
    ("  source: {scm: github, repository: shop-api}",
     ("invalid-value", "spec.source.repository: `shop-api` is not a repository path")),
    ("  source: {scm: github, repository: a/b, path: ../etc}",
     ("invalid-value", "spec.source.path: `../etc` is not a directory of the repository")),
    ("  source: {scm: github}", ("missing-field", "missing required field `repository`")),
    ("  pullRequestImage: registry.example.com/shop/api:pr-{branch}",
     ("invalid-value", "spec.pullRequestImage: unknown placeholder `branch`")),
    ("  mainlineImage: registry.example.com/shop/api:{number}",
     ("invalid-value", "spec.mainlineImage: unknown placeholder `number`")),
    ("  pullRequestImage: registry.example.com/shop/web:pr-{number}",
     ("invalid-value", "spec.pullRequestImage: the image template "
                       "`registry.example.com/shop/web:pr-{number}` must be "
                       "`registry.example.com/shop/api:<tag>`")),
])
def test_a_wrong_source_or_template_is_a_located_diagnostic(
        extra: str, expected: tuple[str, str]) -> None:
    found = problems(extra)
    assert len(found) == 1 and found[0][0] == expected[0], found
    assert found[0][1].startswith(expected[1]), found


def test_a_monorepo_path_concerns_only_changes_below_it() -> None:
    source = Source.model_validate({"scm": "github", "repository": "a/b",
                                    "path": "services/api"})
    assert source.touches(("services/api/main.py",))
    assert not source.touches(("services/api-gateway/main.py", "README.md"))
    assert Source.model_validate({"scm": "github", "repository": "a/b"}).touches(())


TRACK = """apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata: {{name: t}}
spec:
  releaseStages: [{{environments: [development]}}]
{extra}
"""


def test_release_on_merge_is_a_track_choice_and_manual_stays_the_default() -> None:
    plain = load_texts([("t.yaml", TRACK.format(extra=""))]).bundle.tracks["t"]
    assert plain.spec.release_on is ReleaseOn.MANUAL and plain.spec.merge_window == "1m"
    merge = load_texts([("t.yaml", TRACK.format(
        extra="  releaseOn: merge\n  mergeWindow: 30s"))]).bundle.tracks["t"]
    assert merge.spec.release_on is ReleaseOn.MERGE and merge.spec.merge_window == "30s"
    wrong = load_texts([("t.yaml", TRACK.format(extra="  releaseOn: push"))])
    assert [d.code for d in wrong.diagnostics] == ["invalid-value"]
