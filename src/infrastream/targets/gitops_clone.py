"""The working clone the `gitops` target keeps of one environment's GitOps repository.

One clone per environment, under `<data dir>/gitops/<environment>/`, reused between
deployments so that only new objects are fetched. The clone is never trusted: every
deployment starts by resetting it to the remote branch, so whatever a crash left behind
(a half-written directory, an unpushed commit, a rebase in progress) is simply thrown away.
The rendered files are written into a staging directory inside `.git/` and swapped in with
two renames, so the tree that gets committed is always a complete one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import yaml

from infrastream.domain.errors import PermanentError
from infrastream.git_cli import Git, Outcome, classify

from .render import MANAGED_BY, MANAGER

_RACE = re.compile(r"non-fast-forward|fetch first|\[rejected\]|cannot lock ref|"
                   r"failed to update ref|stale info|but expected", re.IGNORECASE)
_NO_BRANCH = re.compile(r"couldn't find remote ref", re.IGNORECASE)
_COMMIT = re.compile(r"[0-9a-f]{7,64}")


class WorkingClone:
    """A clone of `url` whose `branch` the target deploys to, checked out at `root`."""

    def __init__(self, root: Path, url: str, branch: str, *, timeout: float = 120.0) -> None:
        self.root = root
        self.url = url
        self.branch = branch
        self.git = Git(root, timeout=timeout)
        self.remote_ref = f"refs/remotes/origin/{branch}"

    def open(self) -> None:
        """Make `root` a repository whose `origin` is `url` (a broken one is started anew)."""
        healthy = (self.root / ".git").is_dir() and self.git.attempt(
            "rev-parse", "--git-dir").ok
        if not healthy:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q")
        if self.git.attempt("remote", "get-url", "origin").ok:
            self.git("remote", "set-url", "origin", self.url)
        else:
            self.git("remote", "add", "origin", self.url)

    def fetch(self) -> str | None:
        """Bring the remote branch in; its head commit, or None when it does not exist yet."""
        outcome = self.git.attempt("fetch", "-q", "--no-tags", "origin",
                                   f"+refs/heads/{self.branch}:{self.remote_ref}", network=True)
        if not outcome.ok:
            if not _NO_BRANCH.search(outcome.stderr):
                raise classify("fetch", outcome, network=True)
            self.git.attempt("update-ref", "-d", self.remote_ref)
            return None
        return self.remote_head()

    def remote_head(self) -> str | None:
        outcome = self.git.attempt("rev-parse", "--verify", "-q", self.remote_ref)
        return outcome.stdout.strip() if outcome.ok else None

    def reset(self) -> None:
        """Throw away every local change: the checkout becomes the remote branch (or empty)."""
        self.git.attempt("rebase", "--abort")
        if self.remote_head() is not None:
            self.git("checkout", "-q", "-f", "-B", self.branch, self.remote_ref)
        else:
            self.git("symbolic-ref", "HEAD", f"refs/heads/{self.branch}")
            self.git.attempt("update-ref", "-d", f"refs/heads/{self.branch}")
            self.git("read-tree", "--empty")
        self.git("clean", "-q", "-f", "-d", "-x")

    def directory(self, path: str) -> Path:
        """`path` inside the checkout; refused when it would leave the repository."""
        relative = PurePosixPath(path.strip("/"))
        if not relative.parts or relative.is_absolute() or ".." in relative.parts or (
                relative.parts[0] == ".git"):
            raise PermanentError(f"gitops path `{path}` must be a directory inside the repository")
        return self.root.joinpath(*relative.parts)

    def write(self, path: str, files: dict[str, str], *, prune: bool) -> None:
        """Make `path` hold `files` (and, with `prune`, none of our other files), atomically."""
        target = self.directory(path)
        staging = Path(tempfile.mkdtemp(dir=self.root / ".git", prefix="infrastream-"))
        try:
            tree = staging / "tree"
            if target.is_dir():
                shutil.copytree(target, tree, symlinks=True)
            else:
                tree.mkdir()
            if prune:
                for stale in rendered_files(tree):
                    if stale.name not in files:
                        stale.unlink()
            for name, text in files.items():
                (tree / name).write_text(text, encoding="utf-8")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                os.rename(target, staging / "old")
            os.rename(tree, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def stage(self, path: str) -> bool:
        """Stage everything under `path`; whether that differs from the last commit."""
        self.git("add", "-A", "--", path.strip("/"))
        return not self.git.attempt("diff", "--cached", "--quiet").ok

    def commit(self, message: str) -> str:
        self.git("commit", "-q", "--no-verify", "-F", "-", stdin=message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def push(self) -> bool:
        """Push the checkout's branch; False when the remote moved on since our fetch."""
        outcome = self.git.attempt("push", "--porcelain", "origin",
                                   f"HEAD:refs/heads/{self.branch}", network=True)
        if outcome.ok:
            self.git.attempt("update-ref", self.remote_ref, "HEAD")
            return True
        if _RACE.search(outcome.stdout + outcome.stderr) and "hook declined" not in (
                outcome.stdout + outcome.stderr):
            return False
        raise classify("push", outcome, network=True)

    def rebase(self) -> bool:
        """Replay our commit onto the fetched remote head; False when nothing is left to push.

        A conflict means someone changed the same files at the same moment: that is for a
        person to look at, so it is a PermanentError naming the files.
        """
        outcome = self.git.attempt("rebase", "-q", self.remote_ref)
        if not outcome.ok:
            conflicted = self.git.attempt("diff", "--name-only", "--diff-filter=U").stdout.split()
            self.git.attempt("rebase", "--abort")
            if not conflicted:
                raise classify("rebase", outcome, network=False)
            raise PermanentError(
                f"the {self.branch} branch changed {', '.join(conflicted)} at the same time "
                "as this deployment (rebase conflict); look at the repository and deploy again")
        ahead = self.git("rev-list", "--count", f"{self.remote_ref}..HEAD").strip()
        return ahead != "0"

    def read_yaml(self, path: str, name: str) -> dict[str, object] | None:
        """The first document of the checked-out file `name` under `path`, if it is a map."""
        try:
            text = (self.directory(path) / name).read_text(encoding="utf-8")
            document = next(iter(yaml.safe_load_all(text)), None)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return document if isinstance(document, dict) else None

    def contains(self, revision: str, commit: str) -> bool | None:
        """Whether `revision` is `commit` or descends from it; None when this clone does
        not know `revision` (fetch and ask again)."""
        if revision == commit:
            return True
        if not _COMMIT.fullmatch(revision):
            return False
        outcome = self.git.attempt("merge-base", "--is-ancestor", commit, revision)
        return {0: True, 1: False}.get(outcome.code)

    def remote_files(self, path: str) -> dict[str, str]:
        """`{file name: text}` of the YAML files directly under `path` on the remote branch."""
        directory = path.strip("/")
        listing = self.git.attempt("ls-tree", "-z", "--name-only", self.remote_ref,
                                   f"{directory}/")
        if not listing.ok:
            return {}
        files = {}
        for entry in filter(None, listing.stdout.split("\0")):
            name = PurePosixPath(entry).name
            if name.endswith((".yaml", ".yml")):
                shown: Outcome = self.git.attempt("show", f"{self.remote_ref}:{entry}")
                if shown.ok:
                    files[name] = shown.stdout
        return files


def rendered_files(directory: Path) -> list[Path]:
    """The files of `directory` that hold objects Infrastream rendered (hand-written ones
    such as a `kustomization.yaml` are left alone)."""
    return sorted(p for p in directory.glob("*.yaml") if p.is_file() and _is_ours(p))


def _is_ours(path: Path) -> bool:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return any(_labels(d).get(MANAGED_BY) == MANAGER for d in documents)


def _labels(document: object) -> dict[str, object]:
    metadata = document.get("metadata") if isinstance(document, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}
