"""The gitops target commits rendered manifests to a real repository (a bare one on disk)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.git_cli import mask
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.gitops import GitOpsTarget
from infrastream.targets.gitops_clone import WorkingClone
from infrastream.targets.registry import TargetRegistry

SECRET = "hunter2-never-in-git"
SPEC = ApplicationSpec.model_validate({
    "image": "registry.example.com/shop/api", "port": 8080,
    "healthCheck": {"path": "/healthz"},
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret": True}]})
PERSON = {"GIT_AUTHOR_NAME": "Pat Person", "GIT_AUTHOR_EMAIL": "pat@example.com",
          "GIT_COMMITTER_NAME": "Pat Person", "GIT_COMMITTER_EMAIL": "pat@example.com"}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **PERSON})
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


@pytest.fixture
def person(tmp_path: Path, remote: Path) -> Path:
    """Someone else's clone of the GitOps repository, with a README already pushed."""
    path = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(remote), str(path))
    (path / "README.md").write_text("GitOps repository\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "Start the repository")
    git(path, "push", "-q", "origin", "HEAD:main")
    return path


@pytest.fixture
def target(tmp_path: Path) -> GitOpsTarget:
    return GitOpsTarget(tmp_path / "data", backoff=0.01)


def environment(repo: Path | str, name: str = "staging", **settings: Any) -> Environment:
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": name},
        "spec": {"tier": "staging", "target": {"type": "gitops", "repo": str(repo),
                                                **settings}}})


def app(name: str, version: str) -> AppDeployment:
    return AppDeployment(app=name, image=f"registry.example.com/shop/{name}:{version}",
                         version=version, spec=SPEC, env={"LOG_LEVEL": "debug",
                                                          "DB_PASSWORD": SECRET},
                         secret_names=frozenset({"DB_PASSWORD"}))


def release(env: Environment, number: int, *apps: AppDeployment, prune: bool = False,
            actor: str = "rita") -> DeployRequest:
    return DeployRequest(key=f"{number}/{env.metadata.name}/1", release=f"shop/v{number}",
                         digest=f"sha256:{number:064x}", environment=env, apps=apps,
                         workdir=Path("."), actor=actor, prune=prune)


def head(remote: Path) -> str:
    return git(remote, "rev-parse", "main")


def commits(remote: Path) -> list[str]:
    return git(remote, "log", "--format=%s", "main").splitlines()


def tree_file(remote: Path, path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = next(yaml.safe_load_all(git(remote, "show", f"main:{path}")))
    return loaded


def files(remote: Path, directory: str = "envs/staging") -> list[str]:
    return git(remote, "ls-tree", "--name-only", "main", f"{directory}/").splitlines()


def install_hook(target: GitOpsTarget, env: str, hook: str, script: str) -> None:
    path = target.data_dir / "gitops" / env / ".git" / "hooks" / hook
    path.write_text("#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX\n"
                    + "".join(f"export {k}='{v}'\n" for k, v in PERSON.items()) + script)
    path.chmod(0o755)


def test_a_release_becomes_one_commit_naming_release_digest_environment_and_promoter(
        target, remote, person):
    env = environment(remote)

    result = target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "2.0.0")))

    assert result.healthy and result.message == f"committed {head(remote)} to main"
    assert [s.detail for s in result.apps] == [head(remote)] * 2
    assert commits(remote) == ["Deploy shop/v1 to staging", "Start the repository"]
    message = git(remote, "log", "-1", "--format=%an <%ae>%n%B", "main")
    assert message.startswith("Infrastream <infrastream@localhost>\n")
    for line in ("Release: shop/v1", f"Digest: sha256:{1:064x}", "Environment: staging",
                 "Promoted-by: rita", "api 1.0.0, web 2.0.0"):
        assert line in message
    assert files(remote) == ["envs/staging/api.yaml", "envs/staging/infrastream-release.yaml",
                             "envs/staging/web.yaml"]
    record = tree_file(remote, "envs/staging/infrastream-release.yaml")
    assert record["data"] == {"environment": "staging", "release": "shop/v1",
                              "digest": f"sha256:{1:064x}", "api.release": "shop/v1",
                              "web.release": "shop/v1"}
    deployment = tree_file(remote, "envs/staging/web.yaml")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/shop/web:2.0.0")


def test_redeploying_the_same_release_makes_no_new_commit(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    before = head(remote)

    again = target.deploy(release(env, 1, app("api", "1.0.0"), actor="someone-else"))

    assert again.message == "already deployed" and again.healthy
    assert head(remote) == before and again.apps[0].detail == before


def test_secret_values_never_reach_the_repository_or_the_working_clone(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    target.deploy(release(env, 2, app("api", "1.1.0")))

    history = git(remote, "log", "-p", "--all")
    assert SECRET not in history and "secretKeyRef" in history
    clone = target.data_dir / "gitops" / "staging"
    assert all(SECRET.encode() not in p.read_bytes() for p in clone.rglob("*") if p.is_file())


def test_the_branch_and_directory_come_from_the_environment(target, remote, person):
    env = environment(remote, "production-eu", branch="production", path="clusters/eu/shop")

    target.deploy(release(env, 1, app("api", "1.0.0")))

    listed = git(remote, "ls-tree", "-r", "--name-only", "production").splitlines()
    assert listed == ["clusters/eu/shop/api.yaml",  # a new branch starts empty
                      "clusters/eu/shop/infrastream-release.yaml"]
    assert commits(remote) == ["Start the repository"]  # main untouched


def test_an_empty_repository_gets_its_first_branch(tmp_path, target, remote):
    target.deploy(release(environment(remote), 1, app("api", "1.0.0")))

    assert commits(remote) == ["Deploy shop/v1 to staging"]


def test_pruning_removes_apps_that_left_the_release_but_keeps_hand_written_files(
        target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0")))
    git(person, "pull", "-q", "origin", "main")
    (person / "envs/staging/kustomization.yaml").write_text("resources: [api.yaml, web.yaml]\n")
    git(person, "add", "-A")
    git(person, "commit", "-q", "-m", "Add a kustomization")
    git(person, "push", "-q", "origin", "HEAD:main")

    target.deploy(release(env, 2, app("api", "1.1.0"), prune=False))
    assert "envs/staging/web.yaml" in files(remote)

    target.deploy(release(env, 3, app("api", "1.1.0"), prune=True))
    assert files(remote) == ["envs/staging/api.yaml", "envs/staging/infrastream-release.yaml",
                             "envs/staging/kustomization.yaml"]


def test_a_rollback_restores_the_previous_tree_exactly(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0")))
    first = head(remote)
    target.deploy(release(env, 2, app("api", "1.1.0"), app("web", "1.0.0"), app("worker", "1")))

    rollback = target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0"),
                                     prune=True, actor="incident-lead"))

    assert rollback.healthy and head(remote) != first
    assert git(remote, "diff", first, "main") == ""
    assert git(remote, "rev-parse", f"{first}^{{tree}}") == git(remote, "rev-parse",
                                                                 "main^{tree}")
    assert "Promoted-by: incident-lead" in git(remote, "log", "-1", "--format=%B", "main")


def test_a_push_raced_by_a_concurrent_pusher_is_rebased_onto_the_new_head(
        target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    install_hook(target, "staging", "post-commit", f"""
[ -e .git/raced ] && exit 0  # race once: the rebase runs this hook too
touch .git/raced
cd '{person}' && git pull -q origin main && echo "team notes" > NOTES.md \\
  && git add NOTES.md && git commit -q -m 'Concurrent change' && git push -q origin HEAD:main
""")

    result = target.deploy(release(env, 2, app("api", "1.1.0")))

    assert (target.data_dir / "gitops/staging/.git/raced").exists()  # the race did happen
    assert commits(remote) == ["Deploy shop/v2 to staging", "Concurrent change",
                               "Deploy shop/v1 to staging", "Start the repository"]
    assert result.healthy and result.apps[0].detail == head(remote)
    assert git(remote, "show", "main:NOTES.md") == "team notes"
    image = tree_file(remote, "envs/staging/api.yaml")["spec"]["template"]["spec"]
    assert image["containers"][0]["image"].endswith(":1.1.0")


def test_a_concurrent_change_to_the_same_file_is_a_conflict_left_to_a_person(
        target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    install_hook(target, "staging", "post-commit", f"""
[ -e .git/raced ] && exit 0
touch .git/raced
cd '{person}' && git pull -q origin main \\
  && sed -i 's/api:1.0.0/api:1.0.0-hotpatch/' envs/staging/api.yaml \\
  && git commit -q -am 'Hand patch' && git push -q origin HEAD:main
""")

    with pytest.raises(PermanentError, match=r"changed envs/staging/api.yaml at the same time"):
        target.deploy(release(env, 2, app("api", "1.1.0")))

    assert commits(remote)[0] == "Hand patch"
    retried = target.deploy(release(env, 2, app("api", "1.1.0")))  # a person decided: go on
    assert retried.healthy and commits(remote)[0] == "Deploy shop/v2 to staging"


def test_a_branch_that_keeps_moving_gives_up_with_a_transient_error(tmp_path, remote, person):
    target = GitOpsTarget(tmp_path / "data", push_attempts=3, backoff=0.01)
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    install_hook(target, "staging", "pre-push", f"""
cd '{person}' && git pull -q origin main && git commit -q --allow-empty -m 'Busy' \\
  && git push -q origin HEAD:main
""")

    with pytest.raises(TransientError, match="kept moving: 3 pushes were rejected"):
        target.deploy(release(env, 2, app("api", "1.1.0")))

    assert commits(remote)[:3] == ["Busy"] * 3


def test_status_reads_the_remote_branch_so_a_hand_edit_shows(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0")))
    git(person, "pull", "-q", "origin", "main")
    text = (person / "envs/staging/api.yaml").read_text()
    (person / "envs/staging/api.yaml").write_text(text.replace("api:1.0.0", "api:debug"))
    git(person, "commit", "-q", "-am", "Try a debug build")
    git(person, "push", "-q", "origin", "HEAD:main")

    statuses = {s.app: s for s in target.status(env)}

    assert statuses["api"].image == "registry.example.com/shop/api:debug"
    assert statuses["api"].version == "1.0.0" and statuses["api"].release == "shop/v1"
    assert statuses["web"].image == "registry.example.com/shop/web:1.0.0"
    assert {s.health for s in statuses.values()} == {Health.HEALTHY}
    assert statuses["web"].detail == head(remote)


def test_status_of_an_environment_never_deployed_is_empty(target, remote, person):
    assert target.status(environment(remote)) == ()


def test_a_crash_while_writing_leaves_the_tree_whole_and_the_next_deploy_starts_clean(
        target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0")))
    clone = WorkingClone(target.data_dir / "gitops" / "staging", str(remote), "main")
    before = (clone.root / "envs/staging/api.yaml").read_text()

    with pytest.raises(FileNotFoundError):  # the second file cannot be written
        clone.write("envs/staging", {"api.yaml": "half\n", "missing/dir.yaml": "x"}, prune=True)

    assert (clone.root / "envs/staging/api.yaml").read_text() == before
    (clone.root / "envs/staging/api.yaml").write_text("leftover of a crash\n")
    git(clone.root, "commit", "-q", "-am", "Unpushed leftover")
    result = target.deploy(release(env, 2, app("api", "1.1.0")))
    assert result.healthy
    assert "leftover" not in git(remote, "log", "-p", "main")


def test_teardown_removes_the_environments_files_in_one_commit(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0")))

    target.teardown(env)

    assert files(remote) == [] and commits(remote)[0] == "Tear down staging"
    assert target.status(env) == ()


def test_a_push_the_server_refuses_is_a_permanent_error(target, remote, person):
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a merge request' >&2\nexit 1\n")
    hook.chmod(0o755)

    with pytest.raises(PermanentError, match=r"git push: \[remote rejected\] \(pre-receive "
                       r"hook declined\) \(the server said: main is protected: open a merge"):
        target.deploy(release(environment(remote), 1, app("api", "1.0.0")))


def test_a_missing_repository_is_a_permanent_error_in_gits_words(tmp_path, target):
    with pytest.raises(PermanentError, match="does not appear to be a git repository"):
        target.deploy(release(environment(tmp_path / "nowhere.git"), 1, app("api", "1")))


def test_an_unreachable_server_is_a_transient_error(target):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(f"http://127.0.0.1:{port}/shop.git")

    with pytest.raises(TransientError, match="git fetch: fatal: unable to access"):
        target.deploy(release(env, 1, app("api", "1")))


@pytest.fixture
def refusing_server() -> Iterator[str]:
    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://robot:t0ken@127.0.0.1:{server.server_address[1]}/shop.git"
    server.shutdown()
    server.server_close()


def test_a_refused_login_is_a_permanent_error_without_the_credentials(target, refusing_server):
    with pytest.raises(PermanentError, match="Authentication failed") as raised:
        target.deploy(release(environment(refusing_server), 1, app("api", "1")))

    assert "t0ken" not in raised.value.reason
    assert mask("fatal: unable to access 'https://robot:t0ken@git.example.com/x.git/'") == (
        "fatal: unable to access 'https://***@git.example.com/x.git/'")


def test_a_path_outside_the_repository_is_refused(target, remote, person):
    env = environment(remote, path="../elsewhere")

    with pytest.raises(PermanentError, match="must be a directory inside the repository"):
        target.deploy(release(env, 1, app("api", "1")))


def test_the_registry_serves_the_gitops_target(tmp_path):
    assert isinstance(TargetRegistry(tmp_path).get_target("gitops"), GitOpsTarget)


def test_a_release_that_changes_one_app_of_three_changes_exactly_that_apps_file(
        target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0"),
                          app("worker", "1.0.0")))
    first = head(remote)

    target.deploy(release(env, 2, app("api", "1.0.0"), app("web", "1.1.0"),
                          app("worker", "1.0.0")))

    changed = git(remote, "diff", "--name-only", first, "main").splitlines()
    app_files = [f for f in changed if not f.endswith("/infrastream-release.yaml")]
    assert app_files == ["envs/staging/web.yaml"]
    assert changed == ["envs/staging/infrastream-release.yaml", "envs/staging/web.yaml"]
    record = tree_file(remote, "envs/staging/infrastream-release.yaml")["data"]
    assert (record["release"], record["api.release"], record["web.release"]) == (
        "shop/v2", "shop/v2", "shop/v2")
    assert "Release: shop/v2" in git(remote, "log", "-1", "--format=%B", "main")


def test_a_deploy_of_one_app_keeps_the_record_of_the_others(target, remote, person):
    env = environment(remote)
    target.deploy(release(env, 1, app("api", "1.0.0"), app("web", "1.0.0")))

    target.deploy(DeployRequest(key="pr-7", release="pr/pull/17", digest="", environment=env,
                                apps=(app("api", "pr-17"),), workdir=Path("."), actor="ci"))

    statuses = {s.app: s for s in target.status(env)}
    assert (statuses["api"].release, statuses["web"].release) == ("pr/pull/17", "shop/v1")
