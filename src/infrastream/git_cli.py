"""The git command line, run for the `gitops` target and manifest sources, with its failures
sorted for the engine.

The git CLI is used rather than a library because it is what platform teams already trust
with their credentials (credential helpers, SSH agents, `insteadOf` rules all keep working)
and because its behaviour on a race (a rejected push) is the reference one. Git never asks a
question here (no terminal prompt, SSH in batch mode) and speaks English, so its messages
can be read: network trouble and timeouts become `TransientError`, a refused login or a
missing repository `PermanentError`, each with git's own last line of complaint. Credentials
embedded in a URL are masked in every message.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infrastream.domain.errors import BackendError, PermanentError, TransientError

AUTHOR_NAME = "Infrastream"
AUTHOR_EMAIL = "infrastream@localhost"

_PERMANENT = re.compile(
    r"authentication failed|could not read (username|password)|permission denied|"
    r"does not appear to be a git repository|repository not found|not found|"
    r"host key verification failed|invalid username or password|terminal prompts disabled|"
    r"hook declined|protected branch|denied|"
    r"ssl certificate problem|certificate verify failed|\b40[134]\b", re.IGNORECASE)
_TRANSIENT = re.compile(
    r"could not resolve host|connection refused|timed out|failed to connect|"
    r"couldn't connect|connection reset|early eof|remote end hung up|rpc failed|"
    r"temporarily unavailable|\b50[234]\b|unable to access|broken pipe|ssl", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")
_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
            "GIT_NAMESPACE", "GIT_PREFIX")


def mask(text: str) -> str:
    """`https://user:token@host/x` → `https://***@host/x`."""
    return _CREDENTIALS.sub(r"\1***@", text)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def reason(self) -> str:
        """Git's own words: its first `fatal:` line, else the refusal of a push, else its
        first `error:` line, else its last line; and what the server said (`remote:`)."""
        errors = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        refused = [line.rsplit("\t", 1)[-1] for line in self.stdout.splitlines()
                   if line.startswith("!")]
        chosen = (next((line for line in errors if line.startswith("fatal:")), None)
                  or (refused[0] if refused else None)
                  or next((line for line in errors if line.startswith("error:")), None)
                  or (errors[-1] if errors else f"exit status {self.code}"))
        server = [line[7:].strip() for line in errors
                  if line.startswith("remote:") and line[7:].strip()]
        if server and not chosen.startswith("remote:"):
            chosen += " (the server said: " + " ".join(server[:3]) + ")"
        return mask(chosen)


class Git:
    """Runs git in one working directory; `network` calls may fail transiently."""

    def __init__(self, cwd: Path, *, timeout: float = 120.0, executable: str = "git") -> None:
        self.cwd = cwd
        self.timeout = timeout
        self.executable = executable

    def __call__(self, *args: str, network: bool = False, stdin: str | None = None,
                 config: Mapping[str, str] | None = None) -> str:
        """Run `git args…` and return its standard output; raise a BackendError if it fails.
        `config`: settings for this call only, given through the environment (never on the
        command line, where any local user could read them: an `http.extraHeader` with a
        token, say)."""
        outcome = self.attempt(*args, network=network, stdin=stdin, config=config)
        if not outcome.ok:
            raise classify(args[0], outcome, network=network)
        return outcome.stdout

    def attempt(self, *args: str, network: bool = False, stdin: str | None = None,
                config: Mapping[str, str] | None = None) -> Outcome:
        """Run `git args…` and return how it went, failure included; only a timeout raises."""
        command = [self.executable, "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false",
                   "-c", "core.quotepath=off", *args]
        try:
            done = subprocess.run(command, cwd=self.cwd, env=_environment(config), input=stdin,
                                  capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"git {args[0]} timed out after {self.timeout:g}s") from exc
        except OSError as exc:
            raise PermanentError(f"cannot run git: {exc}") from exc
        return Outcome(done.returncode, done.stdout, done.stderr)


def classify(subcommand: str, outcome: Outcome, *, network: bool) -> BackendError:
    """The error a failed git call means for the caller: retry it, or give up with a reason."""
    text = outcome.stderr + outcome.stdout
    reason = f"git {subcommand}: {outcome.reason}"
    if _PERMANENT.search(text):
        return PermanentError(reason)
    if network or _TRANSIENT.search(text):
        return TransientError(reason)
    return PermanentError(reason)


def _environment(config: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _DROPPED and not k.startswith("GIT_CONFIG_")}
    for index, (key, value) in enumerate((config or {}).items()):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    if config:
        env["GIT_CONFIG_COUNT"] = str(len(config))
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANGUAGE="C",
               GIT_AUTHOR_NAME=AUTHOR_NAME, GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
               GIT_COMMITTER_NAME=AUTHOR_NAME, GIT_COMMITTER_EMAIL=AUTHOR_EMAIL)
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env
