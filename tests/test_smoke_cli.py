"""The scaffolded example is valid, and the CLI says so."""

from infrastream.cli.main import main


def test_init_then_validate_and_plan_succeed(tmp_path, capsys):
    assert main(["init", str(tmp_path / "shop")]) == 0
    assert main(["validate", str(tmp_path / "shop")]) == 0
    assert main(["plan", str(tmp_path / "shop")]) == 0
    out = capsys.readouterr().out
    assert "incident-commander × 2" in out
