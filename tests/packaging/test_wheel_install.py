"""The Dockerfile's install step, proven without a Docker engine.

The module builds the wheel as the Dockerfile's first stage does (its `pip wheel` command, run
on a copy of exactly what that stage copies), installs it into a fresh virtualenv as the final
stage does (its `pip install` command, the dependencies coming from the package index), and
then uses nothing but that virtualenv: `infrastream --version`, the image's command
`infrastream serve` (with the image's HEALTHCHECK run against it) and `infrastream demo`, each
started and stopped with the signal a container runtime or a person sends.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dockerfile_steps import ROOT, exec_form, stages

pytestmark = pytest.mark.timeout(300)

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"]
BUILD, FINAL = stages()
DEV_TOOLS = ["pytest", "hypothesis", "ruff", "mypy", "playwright", "kubernetes_validate",
             "importlinter"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a process of the installed virtualenv: no trace of this one."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
           and not k.startswith("INFRASTREAM_")}
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "NO_COLOR": "1", **extra})
    return env


def _pip_step(run: str, python: str, wheels: Path) -> list[str]:
    """A RUN instruction's pip command, with the image's python and /wheels replaced."""
    command = shlex.split(run.split("&&")[0])
    assert command[:3] == ["python", "-m", "pip"], run
    words: list[str] = []
    for word in command[1:]:
        if word.startswith("/wheels"):
            word = str(wheels) + word.removeprefix("/wheels")
            words += glob.glob(word) if "*" in word else [word]
        else:
            words.append(word)
    return [python, *words]


def _copy_build_context(context: Path) -> None:
    """What the first stage's COPY instructions copy, as the .dockerignore filters it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for copy in BUILD.all("COPY"):
        *sources, destination = copy.split()
        target = context / destination
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target if len(sources) == 1 else target / source,
                                ignore=ignore)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / source)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel and the virtualenv, made once per run: pytest-xdist workers share them
    (the first one builds while the others wait on the lock)."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:  # every worker's base is in the run's directory
        root = root.parent
    work = root / "infrastream-image"
    work.mkdir(exist_ok=True)
    with (work / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = work / "installed"
            if not done.exists():
                _build_and_install(work)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    (wheel,) = (work / "wheels").glob("infrastream-*.whl")
    return Installed(wheel, work / "venv")


def _build_and_install(work: Path) -> None:
    context, wheels, venv = work / "src", work / "wheels", work / "venv"
    for leftover in (context, wheels, venv):  # of a run that was interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    context.mkdir()
    _copy_build_context(context)
    subprocess.run(_pip_step(BUILD.run_with("pip wheel"), sys.executable, wheels), cwd=context,
                   env=_clean_env(), check=True, capture_output=True, timeout=180)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    subprocess.run(_pip_step(FINAL.run_with("pip install"), str(venv / "bin" / "python"),
                             wheels), cwd=work, env=_clean_env(), check=True,
                   capture_output=True, timeout=240)


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    package = ROOT / "src" / "infrastream"
    expected = {f"infrastream/{p.relative_to(package).as_posix()}" for p in package.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    with zipfile.ZipFile(installed.wheel) as wheel:
        files = {name for name in wheel.namelist()
                 if not name.startswith(f"infrastream-{VERSION}.dist-info/")}
    assert files == expected
    for needed in ("infrastream/portal/templates/base.html",
                   "infrastream/portal/static/htmx.min.js",
                   "infrastream/store/migrations/script.py.mako",
                   "infrastream/store/migrations/versions/0001_initial_schema.py",
                   "infrastream/examples/shop/manifests/track.yaml",
                   "infrastream/examples/shop/services/shop_service.py", "infrastream/py.typed"):
        assert needed in files


def test_the_installed_command_reports_the_project_version(installed: Installed) -> None:
    result = subprocess.run([installed.bin("infrastream"), "--version"], capture_output=True,
                            text=True, env=_clean_env(), cwd=installed.venv, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, f"infrastream {VERSION}")


def test_the_virtualenv_runs_the_installed_package_without_dev_tools(installed: Installed
                                                                     ) -> None:
    probe = ("import importlib.util, infrastream; print(infrastream.__file__); "
             f"print([m for m in {DEV_TOOLS!r} if importlib.util.find_spec(m)])")
    result = subprocess.run([installed.bin("python"), "-c", probe], capture_output=True,
                            text=True, env=_clean_env(), cwd=installed.venv, timeout=60,
                            check=True)
    location, dev_tools = result.stdout.splitlines()
    assert Path(location).is_relative_to(installed.venv)
    assert dev_tools == "[]"


# -- running it --

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout}s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def _owned_processes(root: Path) -> list[int]:
    """Processes the local target started for a data directory under `root`."""
    marker = f"INFRASTREAM_LOCAL_OWNER={root}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(marker) for v in variables):
            found.append(int(entry.name))
    return found


@pytest.fixture
def start(installed: Installed, tmp_path: Path) -> Iterator[object]:
    """Start `infrastream ARGS` from the virtualenv, in its own session, logging to a file."""
    started: list[Running] = []

    def run(*args: str, port: int) -> Running:
        log = tmp_path / f"{args[0]}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen([installed.bin("infrastream"), *args], stdout=handle,
                                       stderr=subprocess.STDOUT, env=_clean_env(),
                                       cwd=tmp_path, start_new_session=True)
        started.append(Running(process, log, f"http://127.0.0.1:{port}"))
        return started[-1]

    yield run
    for running in started:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(timeout=10)
    for pid in _owned_processes(tmp_path):
        os.kill(pid, signal.SIGKILL)


def test_the_image_command_serves_answers_its_health_check_and_stops_on_sigterm(
    start, installed: Installed, tmp_path: Path,
) -> None:
    port = _free_port()
    command = exec_form(FINAL.one("CMD"))
    assert command[:3] == ["serve", "--host", "0.0.0.0"]
    server = start("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                   str(tmp_path / "data"), port=port)
    server.wait_for(f"infrastream serving on http://127.0.0.1:{port}")

    health_check = exec_form(FINAL.one("HEALTHCHECK").split(" CMD ", 1)[1])
    image_port = FINAL.one("EXPOSE")
    probe = [word.replace(f":{image_port}/", f":{port}/") for word in health_check]
    assert probe[0] == "python"
    checked = subprocess.run([installed.bin("python"), *probe[1:]], env=_clean_env(),
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert httpx.get(f"{server.url}/portal/static/portal.css", timeout=10).status_code == 200

    assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.output()


def test_the_installed_demo_reaches_serving_and_stops_on_sigint(start, tmp_path: Path) -> None:
    port = _free_port()
    demo = start("demo", "--port", str(port), "--data-dir", str(tmp_path / "demo"), port=port)
    demo.wait_for(f"portal   {demo.url}/portal/")
    assert httpx.get(f"{demo.url}/api/v1/healthz", timeout=10).status_code == 200
    sign_in = httpx.get(f"{demo.url}/portal/", timeout=10, follow_redirects=True)
    assert sign_in.status_code == 200 and "quinn" in sign_in.text  # the demo's one-click users

    assert demo.stop(signal.SIGINT) == 130  # Ctrl-C's status, after a clean shutdown
    assert "Traceback" not in demo.output()
