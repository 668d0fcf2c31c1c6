"""`infrastream validate` and the loading every manifest-reading command shares."""

from __future__ import annotations

import typer

from infrastream.manifests import Diagnostic, LoadResult, Severity, load_texts
from infrastream.manifests.diagnostics import sort_key

from .manifest_files import InputError, read_sources
from .output import CliError, Output, OutputOption, emit, say


def load(paths: list[str]) -> LoadResult:
    """Read and validate; a path that cannot be read is a usage error (exit 2)."""
    try:
        sources, problems = read_sources(paths)
    except InputError as exc:
        raise CliError(str(exc), exit_code=2) from None
    result = load_texts(sources)
    diagnostics = sorted([*problems, *result.diagnostics], key=sort_key)
    if result.documents == 0 and not problems and not result.diagnostics:
        where = sources[0][0] if sources else paths[0]
        diagnostics.append(Diagnostic(where, 1, 1, Severity.ERROR, "no-manifests",
                                      "no manifest was found in the input",
                                      "add documents with apiVersion, kind and metadata"))
    return LoadResult(result.bundle, diagnostics, result.documents)


def print_diagnostics(result: LoadResult) -> None:
    for diagnostic in result.diagnostics:
        style = "red" if diagnostic.is_error else "yellow"
        say(diagnostic.render(), style=style, err=True)


def validate(
    paths: list[str] = typer.Argument(..., help="Files or directories of manifests; - is stdin."),
    output: Output = OutputOption,
) -> None:
    """Validate manifests: every problem at once, with file:line:col, a code and a hint.

    Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
    """
    result = load(paths)
    errors = [d for d in result.diagnostics if d.is_error]
    warnings = [d for d in result.diagnostics if not d.is_error]
    summary = f"{result.documents} manifest(s), {len(errors)} error(s), {len(warnings)} warning(s)"
    if output is not Output.TABLE:
        emit(
            {
                "valid": not errors,
                "documents": result.documents,
                "errors": [d.to_json() for d in errors],
                "warnings": [d.to_json() for d in warnings],
            },
            output,
        )
    else:
        print_diagnostics(result)
        if not errors:
            say(f"valid: {summary}", style="green")
    if errors:
        # a CliError, not typer.Exit: its exit status reaches the shell whatever the Typer
        # version (typer.Exit's code is returned by the app, not raised, in non-standalone mode)
        raise CliError(f"the manifests are invalid: {summary}", exit_code=1)
