"""`infrastream validate`, `init`, `schema` and the errors of `plan`, as a user meets them.

Most tests run the CLI in this process through `main()` (fast, with captured output); the
`process` tests run it as a real child process, which is what a shell or CI sees: the exit
status, stdout, stderr and never a Python traceback.

Exit statuses: 0 valid (warnings allowed), 1 invalid, 2 usage error.
"""

from __future__ import annotations

import io
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from infrastream.manifests import KINDS

ENVIRONMENT = textwrap.dedent("""\
    apiVersion: lowops.manifests.v1
    kind: Environment
    metadata:
      name: {name}
    """)

LONELY_TRACK = textwrap.dedent("""\
    apiVersion: lowops.manifests.v1
    kind: ReleaseTrack
    metadata:
      name: lonely
    spec:
      releaseStages:
        - environments: [qa]
    """)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(r"\S+:\d+:\d+: error\[", line)]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- validate: exit statuses and messages --

def test_a_valid_repository_exits_0_and_says_so(cli, scaffold, example_count):
    result = cli("validate", scaffold)
    assert result.code == 0
    assert example_count >= 8  # a track, a set, three apps, three environments
    assert result.out.strip() == f"valid: {example_count} manifest(s), 0 error(s), 0 warning(s)"
    assert result.err == ""


def test_an_invalid_manifest_exits_1_with_location_code_and_hint(cli, tmp_path):
    bad = write(tmp_path / "bad.yaml", ENVIRONMENT.format(name="Bad_Name"))
    result = cli("validate", bad)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith(f"{bad}:4:9: error[invalid-name] metadata.name: `Bad_Name` ")
    assert lines[1] == "  hint: for example `payments-api`"
    assert lines[-1] == "error: the manifests are invalid: 1 manifest(s), 1 error(s), 0 warning(s)"
    assert result.out == ""


def test_warnings_alone_keep_the_exit_status_0(cli, tmp_path):
    track = write(tmp_path / "track.yaml", LONELY_TRACK)
    result = cli("validate", track)
    assert result.code == 0
    assert f"{track}:7:22: warning[undeclared-environment]" in result.err
    assert f"{track}:4:9: warning[unused-track]" in result.err
    assert "valid: 1 manifest(s), 0 error(s), 2 warning(s)" in result.out


def test_errors_of_several_files_are_all_reported_in_file_and_line_order(cli, tmp_path):
    write(tmp_path / "b.yaml", ENVIRONMENT.format(name="B") + "spec: {tier: prod}\n")
    write(tmp_path / "a.yaml", ENVIRONMENT.format(name="A"))
    result = cli("validate", tmp_path)
    assert result.code == 1
    assert [line.split(" error[")[0] for line in error_lines(result.err)] == [
        f"{tmp_path / 'a.yaml'}:4:9:",
        f"{tmp_path / 'b.yaml'}:4:9:",
        f"{tmp_path / 'b.yaml'}:5:14:",
    ]


def test_a_missing_path_is_a_usage_error_on_one_line(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.code == 2
    missing = tmp_path / "nope.yaml"
    assert result.err.splitlines() == [f"error: {missing}: no such file or directory"]
    assert result.out == ""


def test_a_directory_without_manifests_is_a_usage_error(cli, tmp_path):
    write(tmp_path / "empty" / "notes.txt", "apiVersion: lowops.manifests.v1\n")
    result = cli("validate", tmp_path / "empty")
    assert result.code == 2
    assert result.err.splitlines() == [f"error: no .yaml or .yml files under {tmp_path / 'empty'}"]


def test_json_output_is_machine_readable_with_errors_and_warnings_apart(cli, tmp_path):
    write(tmp_path / "track.yaml", LONELY_TRACK)
    write(tmp_path / "env.yaml", ENVIRONMENT.format(name="Bad_Name"))
    result = cli("validate", tmp_path, "-o", "json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["valid"] is False
    assert report["documents"] == 2
    (error,) = report["errors"]
    assert error == {
        "source": str(tmp_path / "env.yaml"), "line": 4, "column": 9, "severity": "error",
        "code": "invalid-name", "message": error["message"], "hint": "for example `payments-api`",
    }
    assert "Bad_Name" in error["message"]
    assert [(w["code"], w["severity"]) for w in report["warnings"]] == [
        ("unused-track", "warning"), ("undeclared-environment", "warning"),
    ]


def test_json_output_of_a_valid_repository_says_valid(cli, scaffold, example_count):
    result = cli("validate", scaffold, "--output", "json")
    assert result.code == 0
    assert json.loads(result.out) == {"valid": True, "documents": example_count, "errors": [],
                                      "warnings": []}


def test_yaml_output_carries_the_same_report_as_json(cli, tmp_path):
    write(tmp_path / "track.yaml", LONELY_TRACK)
    as_json = json.loads(cli("validate", tmp_path, "-o", "json").out)
    assert yaml.safe_load(cli("validate", tmp_path, "-o", "yaml").out) == as_json


def test_a_dash_reads_the_manifest_from_stdin(cli, monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(ENVIRONMENT.format(name="Bad_Name").encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    result = cli("validate", "-")
    assert result.code == 1
    assert error_lines(result.err)[0].startswith("<stdin>:4:9: error[invalid-name]")


def test_a_dash_without_any_standard_input_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)
    result = cli("validate", "-")
    assert result.code == 2
    assert result.err.splitlines() == ["error: -: there is no standard input to read"]


def test_a_binary_file_is_reported_as_not_utf8(cli, tmp_path):
    image = write(tmp_path / "logo.yaml", b"# logo\n\x89PNG\r\n\x1a\n\x00\x00")
    result = cli("validate", image)
    assert result.code == 1
    assert error_lines(result.err) == [
        f"{image}:2:1: error[not-utf8] byte 0x89 is not valid UTF-8"
    ]


def test_an_empty_file_is_reported_as_holding_no_manifest(cli, tmp_path):
    empty = write(tmp_path / "empty.yaml", "")
    result = cli("validate", empty)
    assert result.code == 1
    assert f"{empty}:1:1: error[no-manifests] no manifest was found in the input" in result.err


def test_directories_are_searched_recursively_for_yaml_and_yml_files(cli, tmp_path):
    write(tmp_path / "repo" / "a" / "b" / "c" / "dev.yml", ENVIRONMENT.format(name="dev"))
    write(tmp_path / "repo" / "a" / "prod.yaml", ENVIRONMENT.format(name="prod"))
    write(tmp_path / "repo" / "a" / "b" / "readme.txt", "not: [yaml")
    result = cli("validate", tmp_path / "repo")
    assert result.code == 0
    assert "valid: 2 manifest(s)" in result.out


def test_hidden_directories_such_as_git_are_skipped(cli, scaffold, example_count):
    write(scaffold / ".git" / "config.yaml", "this: [is not\n")
    write(scaffold / "manifests" / ".drafts" / "wip.yaml", ENVIRONMENT.format(name="WIP"))
    result = cli("validate", scaffold)
    assert result.code == 0
    assert f"valid: {example_count} manifest(s)" in result.out


def test_a_file_named_twice_is_read_once(cli, scaffold, example_count):
    result = cli("validate", scaffold, scaffold / "manifests" / "track.yaml")
    assert result.code == 0, result.err
    assert f"valid: {example_count} manifest(s)" in result.out


# -- init --

def test_init_refuses_to_overwrite_an_existing_repository_without_force(cli, scaffold):
    track = scaffold / "manifests" / "track.yaml"
    track.write_text("# mine\n")
    result = cli("init", scaffold)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"error: {scaffold / 'README.md'} already exists (use --force to overwrite)"
    ]
    assert track.read_text() == "# mine\n"


def test_init_with_force_writes_the_example_over_existing_files(cli, scaffold):
    track = scaffold / "manifests" / "track.yaml"
    track.write_text("# mine\n")
    assert cli("init", scaffold, "--force").code == 0
    assert "kind: ReleaseTrack" in track.read_text()
    assert cli("validate", scaffold).code == 0


def test_init_into_a_file_is_a_usage_error(cli, tmp_path):
    target = write(tmp_path / "taken", "x")
    result = cli("init", target)
    assert result.code == 2
    assert result.err.splitlines() == [f"error: {target} exists and is not a directory"]


def test_init_then_validate_then_plan_works_in_a_relative_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    created = cli("init", "demo")
    assert created.code == 0
    assert "created demo/manifests/track.yaml" in created.out
    assert "next: infrastream validate demo && infrastream plan demo" in created.out
    assert cli("validate", "demo").code == 0
    shown = cli("plan", "demo")
    assert shown.code == 0
    assert "ReleaseTrack shop-track" in shown.out
    assert "approval incident-commander × 2" in shown.out


@pytest.mark.parametrize(
    ("file", "old", "new", "line", "column", "code"),
    [
        pytest.param("manifests/track.yaml", "count: 2", "count: 0", 41, 18, "invalid-count",
                     id="an approval count of zero"),
        pytest.param("manifests/track.yaml", "  releaseStages:", "  releaseStage:", 15, 3,
                     "unknown-field", id="a renamed field"),
        pytest.param("manifests/track.yaml",
                     "  parent:\n    kind: ReleaseTrack\n    name: shop-track\n", "", 47, 3,
                     "missing-parent", id="the set without its parent"),
        pytest.param("manifests/environments.yaml", "tier: staging", "tier: stage", 18, 9,
                     "invalid-value", id="a tier that does not exist"),
        pytest.param("manifests/apps/api.yaml", "timeout: 2m", "timeout: 2 minutes", 27, 14,
                     "invalid-duration", id="a duration in words"),
    ],
)
def test_breaking_the_scaffold_gives_one_located_error_and_exit_1(
    cli, scaffold, file, old, new, line, column, code
):
    path = scaffold / file
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    result = cli("validate", scaffold)
    assert result.code == 1
    (error,) = error_lines(result.err)
    assert error.startswith(f"{path}:{line}:{column}: error[{code}] ")
    assert cli("plan", scaffold).code == 1


# -- plan errors --

def test_plan_of_invalid_manifests_shows_the_errors_and_exits_1(cli, tmp_path):
    write(tmp_path / "env.yaml", ENVIRONMENT.format(name="Bad_Name"))
    result = cli("plan", tmp_path)
    assert result.code == 1
    assert error_lines(result.err)[0].startswith(f"{tmp_path / 'env.yaml'}:4:9: error[")
    assert result.err.splitlines()[-1].startswith("error: the manifests are invalid")
    assert result.out == ""


def test_plan_of_an_unknown_track_is_a_usage_error_naming_the_tracks(cli, scaffold):
    result = cli("plan", scaffold, "--track", "nope")
    assert result.code == 2
    assert result.err.splitlines() == ["error: no ReleaseTrack named `nope` (tracks: shop-track)"]


# -- schema --

def test_schema_of_one_kind_is_json_with_its_fields(cli):
    result = cli("schema", "--kind", "ReleaseTrack")
    assert result.code == 0
    schema = json.loads(result.out)
    assert schema["title"] == "ReleaseTrack (lowops.manifests.v1)"
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    spec = schema["$defs"]["ReleaseTrackSpec"]["properties"]
    assert {"preReleaseStages", "releaseStages", "hotfixStages"} <= set(spec)


def test_schema_without_a_kind_covers_every_kind(cli):
    result = cli("schema")
    assert result.code == 0
    schema = json.loads(result.out)
    assert set(schema["discriminator"]["mapping"]) == set(KINDS)
    assert {"ReleaseTrack", "ApplicationSet", "Application", "Environment"} <= set(KINDS)


def test_schema_of_an_unknown_kind_exits_2_with_one_line(cli):
    result = cli("schema", "--kind", "Nope")
    assert result.code == 2
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("error: unknown kind `Nope`; expected one of: ")
    assert result.out == ""


def test_schema_of_a_miscased_kind_suggests_the_right_one(cli):
    result = cli("schema", "--kind", "releasetrack")
    assert result.code == 2
    assert result.err.strip() == "error: unknown kind `releasetrack`; did you mean `ReleaseTrack`?"


# -- a real process --

def test_a_real_process_validates_plans_and_reports_exit_statuses(process, tmp_path):
    steps = [process("init", "demo"), process("validate", "demo"), process("plan", "demo")]
    assert [step.returncode for step in steps] == [0, 0, 0], [s.stderr for s in steps]
    assert "ReleaseTrack shop-track" in steps[2].stdout

    track = tmp_path / "demo" / "manifests" / "track.yaml"
    track.write_text(track.read_text().replace("count: 2", "count: 0"))
    broken = process("validate", "demo")
    assert broken.returncode == 1
    assert "demo/manifests/track.yaml:41:18: error[invalid-count]" in broken.stderr

    missing = process("validate", "nope")
    assert missing.returncode == 2
    assert missing.stderr == "error: nope: no such file or directory\n"

    for step in [*steps, broken, missing]:
        assert "Traceback" not in step.stderr


def test_a_real_process_reads_stdin_for_a_dash(process):
    invalid = process("validate", "-", "-o", "json", stdin=b"kind: [\n")
    assert invalid.returncode == 1
    (error,) = json.loads(invalid.stdout)["errors"]
    assert (error["source"], error["code"], error["line"]) == ("<stdin>", "yaml-syntax", 2)
    assert "Traceback" not in invalid.stderr


def test_a_real_process_reads_binary_stdin_without_a_traceback(process):
    binary = process("validate", "-", stdin=b"\x89PNG\r\n\x1a\n")
    assert binary.returncode == 1
    assert binary.stderr.startswith("<stdin>:1:1: error[not-utf8] byte 0x89 is not valid UTF-8")
    assert "Traceback" not in binary.stderr


def test_a_real_process_reports_a_missing_argument_without_a_traceback(process):
    result = process("validate")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert "paths" in result.stderr.lower()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["validate"], id="validate without a path"),
        pytest.param(["validate", "-o", "xml", "demo"], id="an unknown output format"),
        pytest.param(["plan"], id="plan without a path"),
        pytest.param(["init"], id="init without a directory"),
        pytest.param(["deploy"], id="an unknown command"),
        pytest.param(["validate", "--strict", "demo"], id="an unknown option"),
    ],
)
def test_a_usage_error_exits_2_with_a_message(cli, args):
    result = cli(*args)  # an exception escaping main() is the traceback a user would see
    assert result.code == 2
    assert result.err.strip()


HOSTILE = {
    "deep.yaml": ENVIRONMENT.format(name="deep") + "  labels: " + "[" * 600 + "]" * 600 + "\n",
    "digits.yaml": ENVIRONMENT.format(name="digits") + "  labels: {build: " + "9" * 5000 + "}\n",
    "laughs.yaml": ENVIRONMENT.format(name="laughs") + "  annotations:\n    a: &a lol\n" + "".join(
        f"    {chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(9)),
    "expiry.yaml": LONELY_TRACK.replace("[qa]", "[qa]\n      approvals:\n"
                                        "        - {role: qa, expiresAfter: 9999999999"
                                        "9999999999h}"),
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("deep.yaml", "deep.yaml:5:73: error[too-deep] values are nested deeper "
                     "than 64 levels; the rest of the file is not read", id="600 levels deep"),
        pytest.param("digits.yaml", "digits.yaml:5:19: error[too-large] the integer "
                     "`99999999999999999999…` is larger than a manifest can hold",
                     id="a 5000-digit integer"),
        pytest.param("laughs.yaml", "laughs.yaml:", id="a billion laughs"),
        pytest.param("expiry.yaml", "expiry.yaml:9:36: error[invalid-duration] spec."
                     "releaseStages[0].approvals[0].expiresAfter: `99999999999999999999h` is "
                     "longer than the maximum of 365d", id="an expiry of 10^20 hours"),
    ],
)
def test_a_real_process_reports_hostile_manifests_as_diagnostics(process, tmp_path, name,
                                                                 expected):
    path = write(tmp_path / name, HOSTILE[name])
    result = process("validate", path.name)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    (first,) = error_lines(result.stderr)
    assert first.startswith(expected), first
    lines = result.stderr.splitlines()
    assert lines[lines.index(first) + 1].startswith("  hint: ")
    assert re.fullmatch(r"error: the manifests are invalid: 1 manifest\(s\), 1 error\(s\), "
                        r"\d warning\(s\)", lines[-1])

    as_json = process("validate", path.name, "-o", "json")
    assert as_json.returncode == 1 and "Traceback" not in as_json.stderr
    (error,) = json.loads(as_json.stdout)["errors"]
    assert first.startswith(f"{error['source']}:{error['line']}:{error['column']}: "
                            f"error[{error['code']}]")
