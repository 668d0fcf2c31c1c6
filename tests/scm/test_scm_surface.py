"""The scm package's public surface: what it exports exists, and every module says why it exists."""

from __future__ import annotations

import importlib
import pkgutil

import infrastream.scm as scm


def test_every_exported_name_exists() -> None:
    assert sorted(scm.__all__) == sorted(set(scm.__all__))
    for name in scm.__all__:
        assert hasattr(scm, name), name


def test_every_module_has_a_docstring_and_none_is_a_grab_bag() -> None:
    for info in pkgutil.iter_modules(scm.__path__):
        module = importlib.import_module(f"infrastream.scm.{info.name}")
        assert (module.__doc__ or "").strip(), f"{info.name} has no docstring"
        assert info.name not in ("utils", "helpers", "misc", "common")
