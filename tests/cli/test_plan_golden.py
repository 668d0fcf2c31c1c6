"""Golden tests of `infrastream plan` for the `infrastream init` example.

The expected outputs are tests/golden/plan_example.txt (the tree, rendered by a real process
with COLUMNS=100 and no colours) and tests/golden/plan_example.json (`-o json`). When the
output changes on purpose, regenerate them and review the diff before committing:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/cli/test_plan_golden.py

With UPDATE_GOLDEN=1 the tests write the files instead of comparing (and still pass).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"`plan` output differs from {path}; if the change is intended, regenerate it with "
        "UPDATE_GOLDEN=1 and review the diff"
    )


def test_the_plan_tree_of_the_example_matches_the_golden_file(process, tmp_path):
    assert process("init", "demo").returncode == 0
    result = process("plan", "demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\x1b[" not in result.stdout  # no colour codes when not on a terminal
    check_golden("plan_example.txt", result.stdout)


def test_the_plan_json_of_the_example_matches_the_golden_file(cli, scaffold):
    result = cli("plan", scaffold, "-o", "json")
    assert result.code == 0, result.err
    json.loads(result.out)
    check_golden("plan_example.json", result.out)


def test_the_plan_yaml_carries_the_same_data_as_the_json(cli, scaffold):
    as_json = json.loads(cli("plan", scaffold, "-o", "json").out)
    assert yaml.safe_load(cli("plan", scaffold, "-o", "yaml").out) == as_json


def test_the_plan_of_one_named_track_is_the_plan_of_that_track(cli, scaffold):
    everything = json.loads(cli("plan", scaffold, "-o", "json").out)
    only = json.loads(cli("plan", scaffold, "--track", "shop-track", "-o", "json").out)
    assert only == everything
    assert [item["track"] for item in only] == ["shop-track"]


def test_an_undeclared_environment_is_marked_in_the_tree(cli, scaffold):
    environments = scaffold / "manifests" / "environments.yaml"
    text = environments.read_text()
    environments.write_text(text[: text.index("---\napiVersion: lowops.manifests.v1\n"
                                               "kind: Environment\nmetadata:\n  name: production")])
    result = cli("plan", scaffold)
    assert result.code == 0
    assert "stage 3: production (development, local, undeclared)" in result.out

