"""Shared fixtures only: session emulators, a local destination that records what it gets, the
official client, a real redis-server. Plain helpers (``auth``, ``api``, ``wait_until``, ``sdk``,
``Destination``, ...) live in ``tests/helpers.py``: tests import them from there, never from here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qstash import QStash

from qstash_emulator import Emulator, VirtualClock

from .chromium import browser, checked, shots  # noqa: F401 (fixtures of the browser tests)
from .helpers import Destination, RedisServer, sdk


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Load and crash runs stay out of the default run; ``-m slow`` (CI's own step) runs them."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a load, crash or CI recipe run: python -m pytest -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def destination_server() -> Iterator[Destination]:
    server = Destination()
    yield server
    server.stop()


@pytest.fixture
def destination(destination_server: Destination) -> Destination:
    destination_server.clear()
    return destination_server


@pytest.fixture(scope="session")
def session_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(session_emulator: Emulator) -> Emulator:
    """The shared real-clock emulator, reset for this test."""
    session_emulator.reset()
    return session_emulator


@pytest.fixture(scope="session")
def virtual_session() -> Iterator[Emulator]:
    with Emulator(clock=VirtualClock()) as emulator:
        yield emulator


@pytest.fixture
def virtual(virtual_session: Emulator) -> Emulator:
    """The shared virtual-clock emulator, reset for this test."""
    virtual_session.reset()
    return virtual_session


@pytest.fixture
def client(emulator: Emulator) -> Iterator[QStash]:
    with sdk(emulator) as c:
        yield c


@pytest.fixture
def vclient(virtual: Emulator) -> Iterator[QStash]:
    with sdk(virtual) as c:
        yield c


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server for the session (CI installs it; locally: apt install redis-server)."""
    server = RedisServer()
    yield server.url
    server.stop()
