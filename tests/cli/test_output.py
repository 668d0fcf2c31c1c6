"""`say` prints a message exactly as the Rich console would, without loading Rich where Rich
would change nothing; and text is printed as it is (no emoji codes)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from infrastream.cli import output
from infrastream.cli.output import CONSOLE_OPTIONS, REWRITTEN_BY_RICH, say

STYLES = st.sampled_from([None, "red", "yellow", "green", "dim", "bold"])


def rich_prints(text: str, style: str | None, *, terminal: bool = False) -> str:
    file = io.StringIO()
    Console(file=file, force_terminal=terminal, **CONSOLE_OPTIONS).print(
        text, style=style, markup=False)
    return file.getvalue()


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in output.RICH_TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@given(text=st.text(), style=STYLES)
def test_say_into_a_pipe_writes_what_rich_writes(text: str, style: str | None) -> None:
    # (the `plain` fixture cannot be used with @given; the variables are not set here)
    expected = rich_prints(text, style)
    stream = Pipe()
    original, sys.stdout = sys.stdout, stream
    try:
        say(text, style=style)
    finally:
        sys.stdout = original
    assert stream.getvalue() == expected
    if REWRITTEN_BY_RICH.isdisjoint(text):  # the direct path: the text as it is
        assert expected == text + "\n"


def test_say_writes_every_control_character_as_rich_does(plain: None) -> None:
    for code in [*range(0x20), *range(0x7f, 0xa0), 0x2028, 0x200b, 0xfeff]:
        text = f"a{chr(code)}b\n{chr(code)}"
        stream = Pipe()
        original, sys.stdout = sys.stdout, stream
        try:
            say(text, style="red")
        finally:
            sys.stdout = original
        assert stream.getvalue() == rich_prints(text, "red"), hex(code)


def test_say_to_a_terminal_goes_through_rich(plain: None, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(output, "err_console", Console(stderr=True, force_terminal=True,
                                                       color_system="standard",
                                                       **CONSOLE_OPTIONS))
    say("error: no", style="red", err=True)
    assert terminal.getvalue() == "\x1b[31merror: no\x1b[0m\n"


def test_a_variable_that_forces_styles_sends_say_through_rich(
        plain: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    printed: list[str] = []

    class Recorder:
        def print(self, text: str, **options: object) -> None:
            printed.append(text)

    monkeypatch.setattr(output, "console", Recorder())
    say("valid")
    assert printed == ["valid"]


def test_emoji_codes_are_printed_as_they_are() -> None:
    for text in ("apps.yaml:100:5: error[x] no", "fix :bug: in :smile:"):
        assert rich_prints(text, "red") == text + "\n"
        assert rich_prints(text, "red", terminal=True).count(text) == 1


def test_a_diagnostic_on_line_100_names_its_line(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "env.yaml"
    manifest.write_text("#\n" * 98 + "apiVersion: lowops.manifests.v1\nkind: Nope\n"
                        "metadata: {name: x}\n", encoding="utf-8")
    run = cli("validate", manifest)
    assert run.code == 1
    assert f"{manifest}:100:7: error[unknown-kind]" in run.err


def test_the_deferred_console_serves_rich_itself(plain: None, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    """Rich's live displays (`audit verify`'s bar, `--wait`'s spinner) get the real console
    (they use its private parts and its context manager)."""
    from rich.progress import Progress

    monkeypatch.setattr(output, "err_console", output._Deferred(stderr=True))
    stream = Pipe()
    monkeypatch.setattr(sys, "stderr", stream)
    with Progress(console=output.real(output.err_console), transient=True) as bar:
        bar.add_task("verify", total=None)
    with output.err_console.status("waiting"):
        pass
    output.err_console.print("done", style="dim")
    assert stream.getvalue().endswith("done\n")
