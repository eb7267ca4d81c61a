"""``--qstash-contract PATH``: record how the tests used QStash, write it as a contract, or
check the run against the committed one (``--qstash-contract-update`` rewrites it).

Each xdist worker records its own tests and hands its uses to the controller at the end;
the controller builds the one document from all of them, so the file does not depend on
which worker ran which test, nor in what order.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from qstash_emulator.contracts import (
    Answer,
    ContractError,
    Recorder,
    ReplayError,
    Report,
    Target,
    Usage,
    build,
    compare,
    dumps,
    entry_key,
    load,
    loads,
    replay,
    targets,
)

if TYPE_CHECKING:
    from ._deliveries import Delivery

__all__ = ["ContractPlugin", "recorder_for", "replay_for"]


class _Fixture(Protocol):
    """What a replay needs of the ``qstash`` fixture."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...

    def wait_for(self, *, message_id: str) -> Delivery: ...

    def dead_letters(self) -> list[dict[str, Any]]: ...


_RECORDER = pytest.StashKey[Recorder]()
_WIRE = "qstash_contract"
_PARTIAL = "qstash_contract_partial"


def recorder_for(config: pytest.Config) -> Recorder:
    """The run's recorder (one per process)."""
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None:
        recorder = config.stash[_RECORDER] = Recorder()
    return recorder


class _Workers:
    """The xdist controller's side: each worker's uses, and whether it deselected tests."""

    def __init__(self, plugin: ContractPlugin) -> None:
        self.plugin = plugin

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        self.plugin.from_workers.extend(Usage.from_wire(items) for items in output.get(_WIRE, []))
        self.plugin.partial |= bool(output.get(_PARTIAL, False))


def _narrowed(config: pytest.Config) -> bool:
    """Whether the run was told to collect less than the whole suite (``testpaths``, else
    the root directory): some files or directories, or tests by node id."""
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS or config.getoption("pyargs"):
        return False
    root = config.rootpath
    patterns = config.getini("testpaths")
    found = [
        Path(p) for pattern in patterns for p in glob.glob(str(root / pattern), recursive=True)
    ]
    suite = [p.resolve() for p in found] or [root.resolve()]
    here = config.invocation_params.dir
    named = [(here / arg).resolve() for arg in config.args if "::" not in arg]
    return not all(any(n == s or n in s.parents for n in named) for s in suite)


def _kept(current: dict[str, Any], committed: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``current`` with the committed entries it did not reach (a partial run), and how many."""
    reached = {entry_key(e) for e in current["entries"]}
    kept = [e for e in committed["entries"] if entry_key(e) not in reached]
    merged = sorted([*current["entries"], *kept], key=entry_key)
    return {**current, "entries": merged}, len(kept)


class ContractPlugin:
    """Writes or checks the contract at the end of the session."""

    def __init__(self, config: pytest.Config, path: str) -> None:
        self.path = Path(path)
        self.update = bool(config.getoption("qstash_contract_update"))
        self.recorder = recorder_for(config)
        self.from_workers: list[Usage] = []
        # Some files or tests named, or tests deselected (-k, -m, --lf ...): what the run
        # did not reach is kept.
        self.partial = _narrowed(config)
        self.report: list[str] = []
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_Workers(self), "qstash-contract-workers")

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.partial |= bool(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        uses = self.recorder.usages()
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes the file
            workeroutput[_WIRE] = [u.wire() for u in uses]
            workeroutput[_PARTIAL] = self.partial
            return
        uses += self.from_workers
        # A run stopped early (-x, --maxfail, Ctrl-C) did not reach every test either.
        self.partial |= bool(session.shouldfail or session.shouldstop)
        current = build(uses)
        committed = None
        if self.path.exists():
            try:
                committed = loads(self.path.read_bytes(), str(self.path))
            except (OSError, ContractError) as exc:
                if not self.update:
                    self.report = [f"cannot check the contract: {exc}"]
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
                    return
        note = []
        if committed is not None and self.partial:
            current, kept = _kept(current, committed)
            if kept:
                note = [
                    f"{kept} {'entry' if kept == 1 else 'entries'} not exercised by this "
                    "partial run (some tests named, deselected, or a stop before the end) "
                    "kept as committed"
                ]
        count = len(current["entries"])
        entries = f"{count} {'entry' if count == 1 else 'entries'}"
        if self.update or committed is None:
            verb = "rewritten" if self.path.exists() else "written"
            self.path.write_bytes(dumps(current))
            self.report = [f"{self.path}: {verb} ({entries})", *note]
            return
        lines = compare(committed, current, uses)
        if not lines:
            self.report = [f"{self.path}: this run matches ({entries})", *note]
            return
        self.report = [
            f"{self.path}: this run's use of QStash differs from the contract "
            "(--qstash-contract-update rewrites it):",
            *lines,
            *note,
        ]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report:
            terminalreporter.section("qstash contract")
            for line in self.report:
                terminalreporter.write_line(line)


def replay_for(
    fixture: _Fixture,
    contract: str | Path | dict[str, Any],
    to: str | None,
    only: str | None,
) -> Report:
    """``qstash.replay_contract``: each exemplar published as this test's user, no retries."""
    import httpx

    document = contract if isinstance(contract, dict) else load(contract)
    auth = {"Authorization": f"Bearer {fixture.token}"}

    def publish(target: Target) -> str:
        answer = httpx.post(
            fixture.url + target.publish_path(),
            headers={**target.publish_headers(), **auth},
            content=target.body,
        )
        if answer.status_code >= 300:
            raise ReplayError(f"the emulator refused the publish: {answer.text}")
        return str(answer.json()["messageId"])

    def wait(message_id: str) -> Answer:
        delivery = fixture.wait_for(message_id=message_id)
        response = delivery.response
        return Answer(delivery.status, response.body if response else b"", delivery.error)

    report = replay(targets(document, to, only), publish, wait)
    if report.refused:
        fixture.dead_letters()  # the refused are dead letters: the report looked at them
    return report
