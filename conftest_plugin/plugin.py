"""pytest entry point: the ``qstash`` fixture, its marker and its command-line options.

Loaded by every pytest run once qstash-emulator is installed, so it imports nothing heavy:
the emulator starts, and is imported, only when a test first asks for ``qstash``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ._options import MARKER_HELP

if TYPE_CHECKING:
    from qstash_emulator.contracts import Recorder

    from ._fixture import QStashFixture
    from ._server import ServerPool

__all__ = ["qstash", "qstash_config", "qstash_servers"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qstash", "qstash-emulator (the qstash fixture)")
    group.addoption(
        "--qstash-real-time",
        action="store_true",
        default=False,
        help="run the qstash fixture on the wall clock instead of its virtual clock",
    )
    group.addoption(
        "--qstash-redis-url",
        metavar="URL",
        default=os.environ.get("QSTASH_EMULATOR_REDIS_URL"),
        help="keep the fixture's state in this Redis (redis://host:6379/0) instead of memory; "
        "each run and xdist worker uses its own key prefix "
        "(env: QSTASH_EMULATOR_REDIS_URL)",
    )
    group.addoption(
        "--qstash-seed",
        metavar="SEED",
        default=None,
        help="derive message ids, tokens and signing keys from SEED and the test id, so "
        "snapshots of them are stable",
    )
    group.addoption(
        "--qstash-no-checks",
        action="store_true",
        default=False,
        help="skip the fixture's teardown checks (pending messages, unread dead letters, "
        "unused scripted responses)",
    )
    group.addoption(
        "--qstash-contract",
        metavar="PATH",
        default=None,
        help="record how the tests used QStash as a contract: written to PATH if it does "
        "not exist, else the run must match it (docs/contracts.md)",
    )
    group.addoption(
        "--qstash-contract-update",
        action="store_true",
        default=False,
        help="rewrite the --qstash-contract file with this run's use of QStash",
    )
    parser.addini(
        "qstash_env",
        "when the QSTASH_* variables point at the emulator: 'test' (for each test using the "
        "qstash fixture) or 'session' (for the whole run, set before conftest.py files and "
        "apps are imported, for apps that build their QStash client at import time)",
        default="test",
    )


_SESSION = pytest.StashKey["tuple[ServerPool, dict[str, str | None]]"]()
# The test body's report, for the fixture's teardown: checks do not pile on a failed test.
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """With ``qstash_env = session``, start the emulator and set QSTASH_* before anything
    (a conftest.py, pytest-django's settings) imports the application."""
    mode = early_config.getini("qstash_env")
    if mode not in ("test", "session"):
        raise pytest.UsageError(f"invalid qstash_env {mode!r}: expected 'test' or 'session'")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    options = early_config.known_args_namespace
    if mode == "test" or (worker is None and getattr(options, "numprocesses", None)):
        return  # per test; or the xdist controller, which runs no test
    from ._server import ServerPool

    pool = ServerPool(
        getattr(options, "qstash_redis_url", None),
        worker or "main",
        True,
        _contract_recorder(early_config, getattr(options, "qstash_contract", None)),
    )
    env = pool.get(virtual=True).env()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    early_config.stash[_SESSION] = (pool, saved)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    path = config.getoption("qstash_contract")
    if path:
        from ._contract import ContractPlugin

        config.pluginmanager.register(ContractPlugin(config, path), "qstash-contract")


def _contract_recorder(config: pytest.Config, path: str | None) -> Recorder | None:
    """The recorder of ``--qstash-contract``, or None without it."""
    if not path:
        return None
    from ._contract import recorder_for

    return recorder_for(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return
    pool, saved = session
    pool.close()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked ``@pytest.mark.qstash`` gets the fixture without asking for it."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "qstash" not in names and item.get_closest_marker("qstash"):
            names.append("qstash")


@pytest.fixture(scope="session")
def qstash_servers(request: pytest.FixtureRequest) -> Iterator[ServerPool]:
    """The emulators shared by this session (or xdist worker), started on first use."""
    from ._server import ServerPool

    session = request.config.stash.get(_SESSION, None)
    if session is not None:
        yield session[0]  # started before collection; closed at unconfigure
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    config = request.config
    recorder = _contract_recorder(config, config.getoption("qstash_contract"))
    pool = ServerPool(config.getoption("qstash_redis_url"), worker, contract=recorder)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def qstash_config() -> dict[str, Any]:
    """Defaults for every ``qstash`` fixture; override it in a conftest.py to change them."""
    return {}


@pytest.fixture
def qstash(
    request: pytest.FixtureRequest,
    qstash_servers: ServerPool,
    qstash_config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[QStashFixture]:
    """A QStash emulator for this test, with QSTASH_URL, QSTASH_TOKEN and the signing keys set.

    Configure with ``@pytest.mark.qstash(...)``, ``qstash_config`` or the ``--qstash-*`` options.
    """
    from ._fixture import QStashFixture
    from ._options import resolve

    options = resolve(request, qstash_config)
    fixture = QStashFixture(qstash_servers.get(options.virtual), options, request.node.nodeid)
    for name, value in fixture.env.items():
        monkeypatch.setenv(name, value)
    if options.intercept_production:
        fixture.intercept_production()
    yield fixture
    report = request.node.stash.get(_CALL_REPORT, None)
    fixture.close(check=report is None or not report.failed)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test body failed, so teardown checks do not pile on."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report
