"""The package as a user gets it: the sdist and the wheel build and hold what an install
needs; the wheel, installed with its ``[pytest]`` extra in a clean virtual environment, runs
the dev server, the dashboard and the plugin; and each example runs there after its own
install line (examples/README.md), as a user runs it."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from .helpers import auth

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
STATIC = ROOT / "qstash_emulator" / "dashboard" / "static"
# pip installs from the warm cache or the registry; the build needs hatchling the same way.
INSTALL_TIMEOUT = 900


def _example_blocks() -> dict[str, list[str]]:
    """Each example's commands from examples/README.md: its install lines, then its run."""
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    found = {}
    for section in re.split(r"(?m)^## ", text)[1:]:
        name, body = section.split("\n", 1)
        block = re.search(r"```sh\n(.*?)```", body, flags=re.S)
        assert block is not None, f"examples/README.md: {name} has no sh block"
        found[name.strip()] = block.group(1).strip().splitlines()
    return found


def test_every_example_says_what_it_installs_and_how_it_runs() -> None:
    blocks = _example_blocks()
    with_tests = {path.parent.name for path in EXAMPLES.glob("*/test_*.py")}
    assert sorted(blocks) == sorted(with_tests)
    for name, lines in blocks.items():
        *installs, run = lines
        assert run == f"python -m pytest examples/{name}"
        assert len(installs) <= 1 and all(line.startswith("pip install ") for line in installs)
        # Its own pytest settings: the repository's want pytest-timeout, which the [pytest]
        # extra does not bring ("Unknown config option: timeout", exit 4).
        ini = EXAMPLES / name / "pytest.ini"
        config = configparser.ConfigParser()
        config.read(ini)
        assert config.has_section("pytest"), ini
        said = re.search(
            r"^# Needs the emulator with its \[pytest\] extra(.*)$", ini.read_text(), re.M
        )
        assert said is not None, ini
        expected = f", and: {installs[0]}" if installs else ", nothing more."
        assert said.group(1) == expected, ini


def test_the_readme_opens_with_install_and_start_then_the_tests() -> None:
    """README's first two commands, kept true: the slow tests below install what ``pip
    install .`` installs and run its console script."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)```", readme, flags=re.S)
    assert first is not None and readme.index(first.group(0)) < readme.index("\n## ")
    start, tests = first.group(1).splitlines()
    assert start.startswith("pip install . && qstash-emulator dev ")
    assert tests.startswith("pip install -e '.[dev]' && python -m pytest ")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "qstash-emulator" in project["scripts"] and "dev" in project["optional-dependencies"]


# A clean environment ----------------------------------------------------------------------------


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{shlex.join(args)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _site_packages(venv: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    return venv / relative


def _new_venv(path: Path, base: Path | None = None) -> Path:
    """A virtual environment without pip (this pip installs into it); with ``base``, it also
    sees what ``base`` has, as if installed (an example's line adds to the [pytest] extra)."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], cwd=path.parent)
    if base is not None:
        line = f"import site; site.addsitedir({str(_site_packages(base))!r})\n"
        (_site_packages(path) / "base.pth").write_text(line)
    return path / "bin" / "python"


def _pip_install(python: Path, *requirements: str) -> None:
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *requirements],
        cwd=ROOT,
    )


def _env(venv_python: Path) -> dict[str, str]:
    """A user's shell with the venv active: none of this run's variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QSTASH_", "PYTEST_", "PYTHON", "VIRTUAL_ENV", "COV_"))
    }
    env["PATH"] = f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist, and the wheel built from it (``python -m build``'s way)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment with the wheel and its [pytest] extra, nothing else."""
    python = _new_venv(tmp_path_factory.mktemp("base") / "venv")
    _pip_install(python, f"{dist[1]}[pytest]")
    return python


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT)
def test_the_sdist_and_the_wheel_hold_what_an_install_needs(dist: tuple[Path, Path]) -> None:
    sdist, wheel = dist
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "docs/behaviour.md",
        "conftest_plugin/plugin.py",
    ):
        assert needed in in_sdist
    assert not [name for name in in_sdist if name.startswith((".venv/", "node_modules/"))]

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read("qstash_emulator-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("qstash_emulator-0.1.0.dist-info/entry_points.txt").decode()
        license_text = archive.read("qstash_emulator-0.1.0.dist-info/licenses/LICENSE").decode()
    static = {f"qstash_emulator/dashboard/static/{p.name}" for p in STATIC.iterdir()}
    assert static and static <= names
    docs = {f"qstash_emulator/docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert docs <= names and "qstash_emulator/README.md" in names
    # Only what runs or is read: the docs' pages, not README's pictures (~520 KB of PNG).
    assert {name for name in names if name.startswith("qstash_emulator/docs/")} == docs
    assert not [name for name in names if name.endswith((".png", ".jpg", ".gif"))]
    for module in ("qstash_emulator/py.typed", "qstash_emulator/pytest.py"):
        assert module in names
    assert "conftest_plugin/plugin.py" in names
    assert not [name for name in names if name.startswith(("tests/", "examples/", "bench/"))]
    assert "[pytest11]\nqstash_emulator = conftest_plugin.plugin" in entry_points
    assert "qstash-emulator = qstash_emulator.server.cli:main" in entry_points
    assert "Provides-Extra: pytest" in meta
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert f"\nLicense-Expression: {declared}\n" in meta and "\nLicense-File: LICENSE\n" in meta
    assert license_text == (ROOT / "LICENSE").read_text() and license_text.startswith(declared)
    assert "Description-Content-Type: text/markdown" in meta
    assert re.search(r"^Requires-Dist: qstash>=[\d.]+; extra == 'pytest'$", meta, re.M)


SMOKE = """
import importlib.metadata, pathlib, sys

import httpx

import qstash_emulator
from qstash_emulator import Emulator
from qstash_emulator.testing import docs_path

package = pathlib.Path(qstash_emulator.__file__).parent
assert package.is_relative_to(sys.prefix), package  # the wheel's copy, not a checkout's
assert (package / "py.typed").is_file()
plugins = importlib.metadata.entry_points(group="pytest11")
(plugin,) = [e for e in plugins if e.name == "qstash_emulator"]
plugin.load()
assert docs_path().is_relative_to(package) and "### Teardown checks" in docs_path().read_text()
assert docs_path("docs/behaviour.md").is_file()
with Emulator() as emulator:
    page = httpx.get(emulator.url + "/", follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower(), page
    for name in sys.argv[1:]:
        asset = httpx.get(f"{emulator.url}/_dashboard/static/{name}")
        assert asset.status_code == 200 and asset.content, (name, asset)
print("smoke ok")
"""

PLUGIN_TESTS = """
from datetime import timedelta

from qstash_emulator.pytest import QStashFixture, reply


def test_delivered(qstash: QStashFixture) -> None:
    hook = qstash.endpoint("/hook", reply(201))
    qstash.client().message.publish_json(url=hook.url, body={"n": 1}, delay=3600)
    start = qstash.now
    qstash.advance(timedelta(hours=1))
    assert hook.last.status == 201 and hook.last.json() == {"n": 1}
    assert hook.last.started_at == round((start + timedelta(hours=1)).timestamp() * 1000)


def test_left_pending(qstash: QStashFixture) -> None:
    qstash.client().message.publish_json(url="https://example.com/later", body={}, delay=90)
"""


def _serves(script: Path, cwd: Path, env: dict[str, str]) -> None:
    """README's first command: the console script starts a dev server that answers."""
    proc = subprocess.Popen(
        [str(script), "dev", "--port", "0", "--quiet"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = {}
        for line in proc.stdout:  # the banner comes once it answers; this ends if it exits
            name, _, value = line.strip().partition("=")
            banner[name] = value
            if "QSTASH_NEXT_SIGNING_KEY" in banner:
                break
        creds = auth(banner["QSTASH_TOKEN"])
        keys = httpx.get(f"{banner['QSTASH_URL']}/v2/keys", headers=creds, timeout=10)
        assert keys.json()["current"] == banner["QSTASH_CURRENT_SIGNING_KEY"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT)
def test_the_wheel_works_in_a_clean_venv(installed: Path, tmp_path: Path) -> None:
    env = _env(installed)
    static = sorted(p.name for p in STATIC.iterdir())
    assert "smoke ok" in _run([str(installed), "-c", SMOKE, *static], cwd=tmp_path, env=env)
    _serves(installed.parent / "qstash-emulator", tmp_path, env)

    (tmp_path / "test_app.py").write_text(PLUGIN_TESTS)
    done = subprocess.run(
        [str(installed), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert "2 passed, 1 error" in out, out[-3000:]  # test_left_pending errs at teardown
    # One file named (with CI set, pytest's summary repeats the message: the same file again).
    (where,) = set(re.findall(r"see 'Teardown checks' in (\S+)$", out, flags=re.M))
    assert Path(where).is_relative_to(installed.parent.parent) and Path(where).is_file()


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT)
@pytest.mark.parametrize("name", sorted(_example_blocks()))
def test_each_example_runs_after_its_install_line(
    name: str, installed: Path, tmp_path: Path
) -> None:
    """From the repository's root, as examples/README.md says, in a venv with the [pytest]
    extra and the example's line only."""
    *installs, run = _example_blocks()[name]
    python = _new_venv(tmp_path / "venv", base=installed.parent.parent)
    for line in installs:
        _pip_install(python, *shlex.split(line)[2:])
    command = shlex.split(run)
    assert command[0] == "python"
    out = _run([str(python), *command[1:], "-q"], cwd=ROOT, env=_env(python))
    assert re.search(r"^\d+ passed in ", out.strip().splitlines()[-1]), out[-2000:]
