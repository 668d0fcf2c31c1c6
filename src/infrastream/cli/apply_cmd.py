"""`infrastream apply`, `get` and `describe`: manifests in the control plane.

Apply reads files the way `validate` does, and sends their text to the server, which
validates them together with what is already applied and stores all or nothing; its
diagnostics come back with the file names given here. Get and describe read them back.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer
import yaml
from rich.text import Text

from .client import ServerOption, TokenOption, connect, print_diagnostics
from .manifest_files import InputError, read_sources
from .output import CliError, Output, OutputOption, console, emit, err_console
from .render import print_table

KINDS = ("ReleaseTrack", "ApplicationSet", "Application", "Environment", "FreezeWindow")
KIND_ALIASES = {
    **{alias: "ReleaseTrack" for alias in ("releasetrack", "releasetracks", "track", "tracks")},
    **{alias: "ApplicationSet" for alias in ("applicationset", "applicationsets", "appset",
                                             "appsets")},
    **{alias: "Application" for alias in ("application", "applications", "app", "apps")},
    **{alias: "Environment" for alias in ("environment", "environments", "env", "envs")},
    **{alias: "FreezeWindow" for alias in ("freezewindow", "freezewindows", "freeze",
                                           "freezes")},
}
_CHANGE_STYLES = {"created": "green", "configured": "yellow", "unchanged": "dim",
                  "deleted": "red"}


def canonical_kind(text: str, *, allow_all: bool = False) -> str | None:
    """The manifest kind for a name as typed: any case, plural or short form (`all`: None)."""
    if allow_all and text.lower() == "all":
        return None
    kind = KIND_ALIASES.get(text.lower())
    if kind is None:
        raise CliError(f"unknown kind `{text}`: use one of {', '.join(KINDS)} (or their "
                       "plurals, or track, appset, app, env)", exit_code=2)
    return kind


def _source_root(paths: list[str]) -> str | None:
    first = paths[0]
    if first == "-":
        return None
    path = Path(first).resolve()
    return str(path if path.is_dir() else path.parent)


def apply(
    paths: list[str] = typer.Argument(..., help="Files or directories of manifests; - is stdin."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Apply manifests: validate them with those already applied, then store them (all or
    nothing). Prints `Kind/name created|configured|unchanged` per manifest."""
    client = connect(server, token)
    try:
        sources, problems = read_sources(paths)
    except InputError as exc:
        raise CliError(str(exc), exit_code=2) from None
    if problems:
        print_diagnostics([p.to_json() for p in problems])
        raise CliError("some files are not UTF-8 text; nothing was applied")
    body = {"sources": [{"source": s, "text": t} for s, t in sources],
            "sourceRoot": _source_root(paths)}
    result = client.post("/manifests", body)
    if output is not Output.TABLE:
        emit(result, output)
        return
    print_diagnostics(result.get("warnings"))
    for change in result.get("changes", []):
        verb = change["change"]
        console.print(Text.assemble(f"{change['kind']}/{change['name']} ",
                                    (verb, _CHANGE_STYLES.get(verb, ""))))
    err_console.print(f"revision {result.get('revision')}", style="dim", markup=False)


def get(
    kind: str = typer.Argument(
        ..., help="Kind: track, appset, app, env (any case, plurals), or all."),
    name: str | None = typer.Argument(None, help="Only this manifest."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List applied manifests of a kind (-o json|yaml prints the manifests themselves)."""
    canonical = canonical_kind(kind, allow_all=True)
    if canonical is None and name:
        raise CliError("`get all` takes no NAME; name a kind", exit_code=2)
    client = connect(server, token)
    if name:
        objects = [client.get(f"/manifests/{canonical}/{quote(name, safe='')}")]
    else:
        objects = client.get("/manifests", {"kind": canonical})
    if output is Output.TABLE:
        print_table(["KIND", "NAME", "REVISION", "MANAGED BY", "COMMIT", "AUTHOR"],
                    [[o["kind"], o["name"], o["revision"], o.get("managedBy"),
                      (o.get("commit") or "-")[:12], o.get("author")] for o in objects],
                    empty=f"no {canonical or 'manifest'} applied")
    elif name:
        emit(objects[0]["manifest"], output)
    elif output is Output.YAML:
        _emit_yaml_stream([o["manifest"] for o in objects])
    else:
        emit([o["manifest"] for o in objects], output)


def describe(
    kind: str = typer.Argument(..., help="Kind: track, appset, app, env (any case, plurals)."),
    name: str = typer.Argument(..., help="Name of the manifest."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show one applied manifest as YAML, with the revision that applied it."""
    found = connect(server, token).get(f"/manifests/{canonical_kind(kind)}/{quote(name, safe='')}")
    if output is not Output.TABLE:
        emit(found["manifest"], output)
        return
    console.print(f"# {found['kind']}/{found['name']}, applied in revision {found['revision']}",
                  style="dim", markup=False)
    _emit_yaml_stream([found["manifest"]], separators=False)


def _emit_yaml_stream(documents: list[Any], *, separators: bool = True) -> None:
    """Several manifests as one YAML stream (`---` between them), ready to apply again."""
    if not documents:
        return
    text = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True,
                              explicit_start=separators and len(documents) > 1)
    typer.echo(text.rstrip())


def _read(paths: list[str]) -> list[tuple[str, str]]:
    try:
        sources, problems = read_sources(paths)
    except InputError as exc:
        raise CliError(str(exc), exit_code=2) from None
    if problems:
        print_diagnostics([p.to_json() for p in problems])
        raise CliError("some files are not UTF-8 text")
    return sources


def diff(
    paths: list[str] = typer.Argument(..., help="Files or directories of manifests; - is stdin."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show what applying these manifests would change (like `kubectl diff`): a unified diff
    per object. Exits 1 when something would change, 0 when nothing would."""
    sources = _read(paths)
    result = connect(server, token).post("/manifests/diff", {
        "sources": [{"source": s, "text": t} for s, t in sources]})
    if output is not Output.TABLE:
        emit(result, output)
    else:
        print_diagnostics(result.get("warnings"))
        for item in result.get("objects", []):
            if item["change"] == "unchanged":
                continue
            label = f"{item['kind']}/{item['name']}"
            lines = difflib.unified_diff(_yaml(item.get("before")), _yaml(item.get("after")),
                                         f"live/{label}", f"merged/{label}")
            console.print("".join(lines), end="", markup=False, highlight=False)
    if any(i["change"] != "unchanged" for i in result.get("objects", [])):
        raise typer.Exit(1)


def _yaml(body: Any) -> list[str]:
    if body is None:
        return []
    return yaml.safe_dump(body, sort_keys=False).splitlines(keepends=True)


def delete(
    kind: str = typer.Argument(..., help="Kind (track, appset, app, env, freeze)."),
    name: str = typer.Argument(...),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Delete a manifest applied with `apply`, unless something still needs it (a set with
    an active release, an environment a track uses, a track with sets)."""
    canonical = canonical_kind(kind)
    result = connect(server, token).request(
        "DELETE", f"/manifests/{canonical}/{quote(name, safe='')}")
    if output is not Output.TABLE:
        emit(result, output)
        return
    for change in result.get("changes", []):
        console.print(Text.assemble(f"{change['kind']}/{change['name']} ",
                                    (change["change"], _CHANGE_STYLES["deleted"])))
    err_console.print(f"revision {result.get('revision')}", style="dim", markup=False)
