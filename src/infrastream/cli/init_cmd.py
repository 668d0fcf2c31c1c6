"""`infrastream init`: scaffold an example manifest repository to start from."""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import typer

from infrastream.manifests.schema import json_schema

from .output import CliError, console


def example_files() -> dict[str, bytes]:
    """The files of the bundled example product, by relative path."""
    root = resources.files("infrastream.examples").joinpath("shop")
    files: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.name.startswith(("__", ".")):
                continue
            relative = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, relative + "/")
            else:
                files[relative] = child.read_bytes()

    walk(root, "")
    files["schema.json"] = (json.dumps(json_schema(), indent=2) + "\n").encode()
    return files


def write_example(directory: Path, *, force: bool = False) -> list[Path]:
    files = example_files()
    targets = {directory / relative: content for relative, content in sorted(files.items())}
    clashes = [str(p) for p in targets if p.exists()]
    if clashes and not force:
        raise CliError(f"{clashes[0]} already exists (use --force to overwrite)", exit_code=1)
    for path, content in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return list(targets)


def init(
    directory: Path = typer.Argument(..., help="Directory to create the example repository in."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Scaffold an example repository: a ReleaseTrack with checks and the stakeholders'
    approvals, an ApplicationSet of three Applications, the environments and a README."""
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} exists and is not a directory", exit_code=2)
    try:
        written = write_example(directory, force=force)
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename}: {exc.strerror}") from None
    for path in written:
        console.print(f"created {path}", markup=False)
    console.print(f"\nnext: infrastream validate {directory} && infrastream plan {directory}",
                  markup=False)
