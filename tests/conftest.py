"""Shared fixtures: a session emulator, and a local destination that records what it gets."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from qstash import QStash
from starlette.requests import Request
from starlette.responses import Response

from qstash_emulator import Emulator, VirtualClock
from qstash_emulator._models import Message
from qstash_emulator._serving import ThreadedServer
from qstash_emulator._transport import Response as Answer

from .chromium import browser, checked, shots  # noqa: F401 (fixtures of the browser tests)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Load and crash runs stay out of the default run; ``-m slow`` (CI's own step) runs them."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a load, crash or CI recipe run: python -m pytest -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    status: int | None = None  # what the destination answered, once it has

    @property
    def text(self) -> str:
        return self.body.decode()


Reply = tuple[int, dict[str, str], bytes]


class Destination:
    """A real HTTP server on a free port; answers 200 unless a reply is scripted for a path."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[Reply | Callable[[], Reply]]] = {}
        self._cond = threading.Condition()
        self._server = ThreadedServer(
            self._app, name="destination", log_level="error", interface="asgi3"
        ).start()
        self.port = self._server.port
        self.url = f"http://127.0.0.1:{self.port}"

    async def _app(self, scope, receive, send):  # type: ignore[no-untyped-def]
        request = Request(scope, receive)
        body = await request.body()
        record = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        with self._cond:
            script = self.scripts.get(record.path)
            reply = script.pop(0) if script else (200, {}, b"ok")
            self.received.append(record)
            self._cond.notify_all()
        if callable(reply):
            reply = await asyncio.to_thread(reply)
        status, headers, content = reply
        record.status = status
        await Response(content, status, headers)(scope, receive, send)

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts.setdefault(path, []).extend(replies)

    def wait(self, count: int = 1, path: str | None = None, timeout: float = 10) -> list[Received]:
        """Block until ``count`` requests (to ``path``) have arrived, or fail listing what came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.received if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r.method, r.path) for r in self.received]
                    raise AssertionError(
                        f"waited {timeout}s for {count} request(s) to {path}; got {seen}"
                    )
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self.received.clear()
            self.scripts.clear()

    def stop(self) -> None:
        self._server.stop(5)


class Held:
    """A scripted reply that waits for the test: ``entered`` is set once the request has
    arrived, and the reply goes out once the test sets ``release``."""

    def __init__(self, reply: Reply = (200, {}, b"ok")) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self._reply = reply

    def __call__(self) -> Reply:
        self.entered.set()
        self.release.wait(10)
        return self._reply


class HoldingGate:
    """An engine gate that holds each attempt until the test sets ``release``: a busy engine,
    or a gate still deciding (``engine.gates.insert(0, gate)``, removed by the test)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    async def admit(self, msg: Message) -> bool:
        self.entered.set()
        await asyncio.to_thread(self.release.wait, 10)
        return True

    async def attempt_done(self, msg: Message) -> None:
        return None

    async def finished(self, msg: Message) -> None:
        return None


class Answering:
    """Answers every delivery in process, without a socket: the fallback of an emulator's
    router (``emu.runtime.router.fallback = Answering(...)``) when the test is about the API."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        self.answer = answer

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Answer:
        return self.answer(method, url)

    async def close(self) -> None:
        pass


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


def wait_until(
    predicate: Callable[[], object], timeout: float = 10, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def sdk(emulator: Emulator, token: str | None = None) -> Iterator[QStash]:
    """The official Python client pointed at ``emulator``, closed afterwards."""
    client = QStash(token or emulator.token, base_url=emulator.url)
    try:
        yield client
    finally:
        client.http._client.close()


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
    from .servers import RedisServer

    server = RedisServer()
    yield server.url
    server.stop()
