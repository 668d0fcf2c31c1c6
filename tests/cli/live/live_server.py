"""What the live-server CLI tests share: the server handle, a run's result, error lines."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

ADMIN = "<admin>"
DEFAULT = "<default>"
"""The token a command runs with by default: the admin's for `user`/`token` commands (admin
manages identities and nothing else), else `ops`'s (platform, release manager, developer)."""
OPS_ROLES = ["platform", "release-manager", "developer"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    url: str
    admin_token: str
    data_dir: Path
    ops_token: str = ""


@dataclass
class Result:
    code: int
    out: str
    err: str


def one_line_error(result: Result, *, after_diagnostics: bool = False) -> str:
    """The `error: ...` line of a failed command: exit 1, and nothing else on stderr unless
    diagnostics come first."""
    lines = result.err.strip().splitlines()
    assert result.code == 1, result
    assert lines and lines[-1].startswith("error: "), result
    assert after_diagnostics or len(lines) == 1, result
    return lines[-1]
