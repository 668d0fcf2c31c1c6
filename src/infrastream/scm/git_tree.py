"""A Git repository holding manifests, read at one commit.

A manifest source keeps a bare mirror of its repository in the data directory and reads
the manifest files under its path straight from Git's object store (`ls-tree` and one
`cat-file --batch` for all blobs), so a tree of ten thousand files is read without a
checkout and whatever commit is asked for — the branch head, a pull request's head — is
read exactly as committed. Fetching uses the git CLI (`git_cli`), so the server's
credential helpers and SSH keys work; an extra HTTP header can carry a token.
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.git_cli import Git, mask

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    """`Name <email>` of the commit's author."""
    subject: str


class GitTree:
    """The bare mirror of one repository under `directory`."""

    def __init__(self, directory: Path, repository: str, *, timeout: float = 120.0,
                 header: str | None = None) -> None:
        self.directory = directory
        self.repository = repository
        self._header = header
        self._git = Git(directory, timeout=timeout)

    def _config(self) -> dict[str, str]:
        return {"http.extraHeader": self._header} if self._header else {}

    def fetch(self, ref: str) -> str:
        """Fetch `ref` (a branch name, or `refs/pull/17/head`) and return its commit sha."""
        if not (self.directory / "HEAD").exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "-q", ".")
        local = f"refs/infrastream/{ref.removeprefix('refs/')}"
        self._git("fetch", "--quiet", "--no-tags", "--force", self.repository,
                  f"{_full(ref)}:{local}", network=True, config=self._config())
        return self._git("rev-parse", "--verify", f"{local}^{{commit}}").strip()

    def commit(self, sha: str) -> Commit:
        out = self._git("show", "-s", "--format=%H%x00%an <%ae>%x00%s", sha)
        full, author, subject = out.rstrip("\n").split("\x00", 2)
        return Commit(full, author, subject)

    def files(self, sha: str, path: str) -> list[tuple[str, str]]:
        """(path in the repository, text) of every manifest file under `path` at `sha`."""
        prefix = normalized(path)
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", sha, "--",
                            *([prefix] if prefix else []))
        blobs: list[tuple[str, str]] = []
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, name = entry.split("\t", 1)
            kind, obj = meta.split()[1:3]
            if kind == "blob" and name.endswith(MANIFEST_SUFFIXES):
                blobs.append((name, obj))
        texts = self._blobs([obj for _name, obj in blobs])
        return [(name, texts[obj]) for name, obj in blobs]

    def _blobs(self, objects: list[str]) -> dict[str, str]:
        if not objects:
            return {}
        try:
            done = subprocess.run(["git", "cat-file", "--batch"], cwd=self.directory,
                                  input="".join(f"{o}\n" for o in objects).encode(),
                                  capture_output=True, timeout=self._git.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError("git cat-file timed out") from exc
        if done.returncode != 0:
            raise PermanentError("git cat-file: " + mask(done.stderr.decode(errors="replace")))
        found: dict[str, str] = {}
        data, at = done.stdout, 0
        while at < len(data):
            end = data.index(b"\n", at)
            obj, _type, size = data[at:end].decode().split()
            start = end + 1
            found[obj] = data[start:start + int(size)].decode("utf-8", errors="replace")
            at = start + int(size) + 1
        return found


def basic_header(user: str, password: str) -> str:
    """An `http.extraHeader` value authenticating git over HTTPS as `user:password`."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Authorization: Basic {pair}"


def host_repository(url: str) -> str:
    """The host's name of a repository from its clone URL: `https://github.com/o/r.git` and
    `git@github.com:o/r.git` → `o/r` (GitLab groups keep their depth)."""
    rest = url.strip().rstrip("/").removesuffix(".git")
    if "://" in rest:
        rest = rest.split("://", 1)[1].split("/", 1)[-1]
    elif ":" in rest:
        rest = rest.split(":", 1)[1]
    return rest.strip("/")


def normalized(path: str) -> str:
    """A repository path as `a/b` (no leading `./` or `/`, no trailing `/`); refuses `..`."""
    parts = [p for p in PurePosixPath(path.strip()).parts if p not in ("/", ".")]
    if ".." in parts:
        raise ValueError(f"`{path}` leaves the repository")
    return "/".join(parts)


def _full(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"
