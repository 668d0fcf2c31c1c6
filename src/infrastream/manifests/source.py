"""Where an Application's code lives, and how its builds are named: what the SCM gate reads.

`spec.source` names a connection (`infrastream scm add`), the repository on that host and,
for a monorepo, the `path` the application lives under: a pull request that changes nothing
below it does not concern the application. `spec.pullRequestImage` and `spec.mainlineImage`
are image templates for CI systems that push predictable tags, so the gate need not wait
for `version record`:

    pullRequestImage: registry.example.com/shop/api:pr-{number}-{sha7}
    mainlineImage: registry.example.com/shop/api:main-{sha7}

Placeholders: `{sha}` (the commit), `{sha7}` (its first seven characters) and, for pull
requests only, `{number}`. The template must name the application's own image repository.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from .fields import ManifestModel, Name

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PULL_REQUEST_PLACEHOLDERS = ("number", "sha", "sha7")
MAINLINE_PLACEHOLDERS = ("sha", "sha7")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_PATH = re.compile(r"^[^/\s][^\s]*$")


def _repository(value: str) -> str:
    if not _REPOSITORY.fullmatch(value) or ".." in value.split("/"):
        raise PydanticCustomError(
            "invalid-value", "`{value}` is not a repository path: write it as the host shows "
            "it, e.g. `octo-org/shop-api` or `platform/shop/api`", {"value": value[:80]})
    return value


def _path(value: str) -> str:
    parts = value.strip("/").split("/")
    if not _PATH.fullmatch(value) or ".." in parts or "" in parts:
        raise PydanticCustomError(
            "invalid-value", "`{value}` is not a directory of the repository: write it "
            "relative to the root, e.g. `services/api`", {"value": value[:80]})
    return value.strip("/")


Repository = Annotated[str, AfterValidator(_repository),
                       Field(examples=["octo-org/shop-api", "platform/shop/api"])]


class Source(ManifestModel):
    """The repository an Application is built from, on a connected Git host."""

    scm: Name
    """The connection (`infrastream scm add github NAME`) that delivers its webhooks."""
    repository: Repository
    """`owner/name` on GitHub, the project path (`group/sub/project`) on GitLab."""
    path: Annotated[str, AfterValidator(_path)] | None = None
    """Monorepos: the directory the application lives under. Pull requests and merges that
    change nothing below it do not concern the application."""
    branch: str | None = Field(None, min_length=1, max_length=255)
    """The branch merges land on; default: the repository's default branch as the host
    reports it with each push (else `main`)."""

    def touches(self, paths: tuple[str, ...]) -> bool:
        """Whether a change of `paths` concerns the application (always, without `path`)."""
        if self.path is None:
            return True
        prefix = self.path + "/"
        return any(p == self.path or p.startswith(prefix) for p in paths)


def check_template(template: str, image: str, placeholders: tuple[str, ...]) -> None:
    """Raise invalid-value unless `template` is `image:<tag>` with known placeholders."""
    unknown = [p for p in _PLACEHOLDER.findall(template) if p not in placeholders]
    if unknown:
        raise PydanticCustomError(
            "invalid-value", "unknown placeholder `{name}` in an image template "
            "(placeholders: {known})", {"name": unknown[0][:40], "known": ", ".join(placeholders)})
    if not template.startswith(image + ":") or len(template) == len(image) + 1:
        raise PydanticCustomError(
            "invalid-value", "the image template `{template}` must be `{image}:<tag>`: the "
            "application's own image with a tag", {"template": template[:120], "image": image})


def fill_template(template: str, *, sha: str, number: int | None = None) -> str:
    """The image a template names for commit `sha` (and pull request `number`)."""
    values = {"sha": sha, "sha7": sha[:7], "number": str(number) if number is not None else ""}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
