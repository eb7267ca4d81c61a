"""The CI recipes in examples/ run as written (docs/ci.md#recipes): each shell script, and each
GitHub Actions workflow's ``run:`` steps in order, each step a shell of its own as on GitHub.

What a CI machine would install is already here: the emulator is installed in this
environment, so the recipes' ``pip install`` finds it satisfied (``PIP_NO_INDEX`` makes sure
nothing is fetched or changed), and ``npm ci`` prefers npm's cache. The only settings given
are the recipes' own: ``QSTASH_EMULATOR_PACKAGE`` (what to install) and a free
``QSTASH_EMULATOR_PORT``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .helpers import free_port

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "ci.md"
# What a workflow's ``uses:`` steps provide, and this machine already has.
PROVIDED = {"actions/checkout", "actions/setup-python", "actions/setup-node"}
NODE = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node is not installed"
)
# Each run takes 5-20 s (install checks, a server, a test run): CI's -m slow step runs them.
RECIPES = [
    pytest.param("ci_python", id="python", marks=[pytest.mark.slow]),
    pytest.param("ci_node", id="node", marks=[pytest.mark.slow, pytest.mark.node, NODE]),
]


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A copy of the example project, as a CI job checks it out; its emulator is stopped
    afterwards if a failed recipe left it running."""
    copy = tmp_path / "project"
    shutil.copytree(EXAMPLES / request.param, copy, ignore=shutil.ignore_patterns("node_modules"))
    yield copy
    pid_file = copy / "emulator.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSTASH", "PYTEST"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PIP_NO_INDEX"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the project needs none of ours
    env["npm_config_prefer_offline"] = "true"
    env["QSTASH_EMULATOR_PACKAGE"] = "qstash-emulator"
    env["QSTASH_EMULATOR_PORT"] = str(free_port())
    return env


@pytest.mark.parametrize("project", RECIPES, indirect=True)
def test_the_shell_recipe_runs_as_written(project: Path) -> None:
    done = subprocess.run(
        ["sh", str(project / "ci.sh")],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "1 passed" in out or "# pass 1" in out, out


@pytest.mark.parametrize("project", RECIPES, indirect=True)
def test_the_workflow_steps_run_in_order(project: Path) -> None:
    workflow = yaml.safe_load((project / "github-workflow.yml").read_text())
    (job,) = workflow["jobs"].values()
    env = _environment()
    # The job's own variables, but the test's package and port (as a fork would edit them).
    env = {**env, **{k: str(v) for k, v in job.get("env", {}).items()}}
    env.update({k: v for k, v in _environment().items() if k.startswith("QSTASH_EMULATOR_")})
    github_env = project.parent / "github.env"
    github_env.touch()
    env["GITHUB_ENV"] = str(github_env)
    ran, failed, log = [], None, []
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].split("@")[0] in PROVIDED, step
            continue
        if failed is not None and step.get("if") != "always()":
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=project,
            env={**env, **step.get("env", {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        ran.append(step["name"])
        log.append(f"--- {step['name']}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        if done.returncode != 0 and failed is None:
            failed = step["name"]
        # GITHUB_ENV: what a step appends there is in the environment of the later ones.
        for line in github_env.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = value
    assert failed is None, "\n".join(log)
    assert ran[-1] == "Stop it" and len(ran) == 5, ran
    assert "1 passed" in log[3] or "# pass 1" in log[3], log[3]


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_documented_sequence_runs_as_written(tmp_path: Path) -> None:
    """docs/ci.md's block under ``set -e``: start, wait, probe, read the block, stop (exit 0)."""
    (block,) = _doc_blocks("sh")
    env = _environment()
    port = env["QSTASH_EMULATOR_PORT"]  # 8080 may be taken here: the server reads this too
    script = block.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eu", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ready, probe = done.stdout.splitlines()
    assert ready.startswith("qstash-emulator ") and f"ready at http://127.0.0.1:{port} " in ready
    (documented,) = _doc_blocks("json")
    health = json.loads(probe)
    assert sorted(health) == sorted(json.loads(documented))
    assert health["status"] == "ok" and health["store"] == "memory"
    names = [line.partition("=")[0] for line in (tmp_path / "qstash.env").read_text().split()]
    assert names == [
        "QSTASH_URL",
        "QSTASH_TOKEN",
        "QSTASH_CURRENT_SIGNING_KEY",
        "QSTASH_NEXT_SIGNING_KEY",
    ]
