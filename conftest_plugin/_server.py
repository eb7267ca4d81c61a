"""The emulators behind the fixture: started on first use, one per clock kind, per xdist worker.

Each has a session token that stands for whichever test is running (bound to that test's
user at set-up, unbound at teardown). The SDK clients ``qstash.client()`` hands out are
built once on it, since building one costs a TLS context (~25 ms); and an app that built
its client at import time, before any test, reaches the running test through it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qstash_emulator.testing import (
    Attempt,
    Emulator,
    RealClock,
    Settings,
    VirtualClock,
    make_token,
    new_signing_key,
)

if TYPE_CHECKING:
    from qstash import QStash

    from qstash_emulator.contracts import Recorder as ContractRecorder

from . import _sdk
from ._deliveries import Delivery
from ._endpoints import ScriptedResponder
from ._matching import Deliveries

__all__ = ["UNBOUND", "Identity", "Recorder", "Server", "ServerPool", "offline"]

UNBOUND = (
    "this is the pytest session's token, which stands for the running test, and no test using "
    "the qstash fixture is running on this emulator"
)


class Recorder:
    """Collects one test's delivery records; waiters are woken as each attempt lands."""

    def __init__(self, keys: tuple[str, str], resolve: Callable[[str], str]) -> None:
        self.deliveries = Deliveries()
        self._keys = keys
        self._resolve = resolve
        self._cond = threading.Condition()

    def add(self, attempt: Attempt) -> None:
        delivery = Delivery(attempt, self._resolve(attempt.request.url), self._keys)
        with self._cond:
            self.deliveries.append(delivery)
            self._cond.notify_all()

    def wait_for_more(self, seen: int, timeout: float) -> bool:
        """Block until more than ``seen`` records exist, at most ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.deliveries) > seen, timeout)


def offline(url: str) -> str:
    """Why a delivery to ``url`` was not sent, and the ways to fix it."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"not sent: {parts.hostname} is not on this machine, and the qstash fixture keeps "
        f"deliveries here: qstash.mount({origin!r}, app) delivers into your app, "
        f"qstash.rewrite({origin!r}, 'http://127.0.0.1:PORT') to a local server; "
        "@pytest.mark.qstash(network=True) lets it go out"
    )


@dataclass(frozen=True)
class Identity:
    """The session's own credentials: a token for whichever test runs, and signing keys that
    every test's user shares when the environment is set for the whole session."""

    token: str
    keys: tuple[str, str]

    @classmethod
    def new(cls) -> Identity:
        return cls(make_token("pytest-session"), (new_signing_key(), new_signing_key()))


class Server:
    """One emulator shared by the tests of a session (or xdist worker), each as its own user."""

    def __init__(
        self,
        virtual: bool,
        redis_url: str | None,
        prefix: str,
        identity: Identity,
        session_env: bool = False,
        contract: ContractRecorder | None = None,
    ) -> None:
        # Closed connections: the code under test builds SDK clients it cannot close.
        settings = Settings(port=0, redis_url=redis_url, redis_prefix=prefix, keep_alive=False)
        self.identity = identity
        self.session_env = session_env
        self._clients: dict[str, QStash] = {}
        self.virtual = virtual
        self.clock = VirtualClock() if virtual else RealClock()
        self.emulator = Emulator(settings, clock=self.clock)
        emulator = self.emulator
        self.scripted = ScriptedResponder(virtual)
        emulator.add_responder(self.scripted)
        emulator.on_attempt(self._record)
        self._recorders: dict[str, Recorder] = {}
        # Users that called the API: a test that never did has nothing to clean up.
        self.active: set[str] = set()
        emulator.on_api_call(self.active.add)
        emulator.keep_local(offline)
        emulator.bind_token(identity.token, None, UNBOUND)
        # --qstash-contract: hears each test's publishes (the fixture binds users to tests).
        self.contract = contract
        if contract is not None:
            contract.attach(emulator)
        self.emulator.start()

    def env(self) -> dict[str, str]:
        """The session's QSTASH_* variables: its token and keys, this emulator's URL."""
        return {
            "QSTASH_URL": self.emulator.url,
            "QSTASH_TOKEN": self.identity.token,
            "QSTASH_CURRENT_SIGNING_KEY": self.identity.keys[0],
            "QSTASH_NEXT_SIGNING_KEY": self.identity.keys[1],
        }

    def client(self, **kwargs: Any) -> QStash | None:
        """A kept SDK client on the session token, or None when ``kwargs`` cannot be a key."""
        if not all(v is None or isinstance(v, bool | int | float | str) for v in kwargs.values()):
            return None
        key = repr(sorted(kwargs.items()))
        client = self._clients.get(key)
        if client is None or _sdk.is_closed(client):  # a test may have closed it
            client = _sdk.new_client(self.identity.token, self.emulator.url, **kwargs)
            self._clients[key] = client
        return client

    def allow_network(self, allowed: bool) -> None:
        """Let deliveries reach hosts that are not on this machine (one test's choice)."""
        self.emulator.keep_local(None if allowed else offline)

    def _record(self, attempt: Attempt) -> None:
        recorder = self._recorders.get(attempt.user)
        if recorder is not None:
            recorder.add(attempt)

    def recorder(self, user_id: str, keys: tuple[str, str]) -> Recorder:
        recorder = Recorder(keys, self.emulator.resolve)
        self._recorders[user_id] = recorder
        return recorder

    def drop_recorder(self, user_id: str) -> None:
        self._recorders.pop(user_id, None)

    def close(self) -> None:
        for client in self._clients.values():
            _sdk.close(client)
        if self.emulator.settings.redis_url is not None:
            self.emulator.call(self.emulator.flush())
        self.emulator.stop()


class ServerPool:
    """Starts each kind of server the first time a test asks for it."""

    def __init__(
        self,
        redis_url: str | None,
        worker: str,
        session_env: bool = False,
        contract: ContractRecorder | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.session_env = session_env
        self.contract = contract
        self.identity = Identity.new()
        # A fresh prefix per run keeps workers (and old runs) apart on a shared Redis.
        self.prefix = f"qe:pytest:{worker}:{uuid.uuid4().hex[:8]}:"
        self._servers: dict[bool, Server] = {}
        self._lock = threading.Lock()

    def get(self, virtual: bool) -> Server:
        with self._lock:
            server = self._servers.get(virtual)
            if server is None:
                kind = "virtual" if virtual else "real"
                server = Server(
                    virtual,
                    self.redis_url,
                    f"{self.prefix}{kind}:",
                    self.identity,
                    self.session_env,
                    self.contract,
                )
                self._servers[virtual] = server
            return server

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
