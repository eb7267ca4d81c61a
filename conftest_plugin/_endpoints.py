"""Scripted destinations: answer a sequence (500, 500, then 200), refuse, or hang past the timeout.

``ScriptedResponder`` is one of the emulator router's responders: it answers for every
scripted URL and lets everything else go on to mounted apps, rewrites and the network.
Redirects it answers are followed like any other.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from qstash_emulator.testing import AttemptRequest, DeliveryError, Response

if TYPE_CHECKING:
    from ._deliveries import Delivery
    from ._matching import Deliveries

__all__ = ["HANG", "REFUSE", "Endpoint", "Reply", "ScriptedResponder", "reply"]


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, headers and body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def describe(self) -> str:
        extra = "".join(f", {k}: {v}" for k, v in self.headers.items())
        return f"{self.status}{extra}"


@dataclass(frozen=True)
class _Fault:
    name: str

    def describe(self) -> str:
        return self.name


REFUSE = _Fault("refuse the connection")
HANG = _Fault("hang past the timeout")

Handler = Callable[[AttemptRequest], "Reply | int | Awaitable[Reply | int]"]
Step = Reply | _Fault | Handler


def reply(
    status: int = 200,
    body: bytes | str = b"",
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> Reply:
    """A scripted answer: ``reply(489, headers={"Upstash-NonRetryable-Error": "true"})``."""
    headers = dict(headers or {})
    if json is not None:
        body = orjson.dumps(json)
        headers.setdefault("Content-Type", "application/json")
    return Reply(status, headers, body.encode() if isinstance(body, str) else body)


def _step(value: Any) -> Step:
    if isinstance(value, bool):
        raise TypeError(f"invalid scripted response {value!r}")
    if isinstance(value, int):
        return Reply(value)
    if isinstance(value, Reply | _Fault) or callable(value):
        return value  # type: ignore[no-any-return]
    if value in ("refuse", "hang"):
        return REFUSE if value == "refuse" else HANG
    raise TypeError(
        f"invalid scripted response {value!r}: expected a status, reply(...), "
        "'refuse', 'hang' or a function of the request"
    )


def _describe(step: Step) -> str:
    if isinstance(step, Reply | _Fault):
        return step.describe()
    return f"handler {getattr(step, '__name__', repr(step))}"


class Endpoint:
    """A destination that answers a script; deliveries to it are recorded like any other."""

    def __init__(self, url: str, owner: Any, fallback: Step | None) -> None:
        self.url = url
        self._owner = owner
        self._script: list[Step] = []
        self._fallback = fallback
        self._lock = threading.Lock()

    def respond(self, *steps: Any) -> Endpoint:
        """Answer the next requests with ``steps`` in order: statuses, ``reply(...)``, "refuse",
        "hang" or functions of the request. Afterwards it answers 200 (or passes through)."""
        parsed = [_step(s) for s in steps]
        with self._lock:
            self._script.extend(parsed)
        return self

    def always(self, step: Any) -> Endpoint:
        """What to answer once the script is used up."""
        self._fallback = _step(step)
        return self

    def take(self) -> Step | None:
        with self._lock:
            if self._script:
                return self._script.pop(0)
        return self._fallback

    @property
    def unused(self) -> list[str]:
        """Scripted answers no request has consumed yet."""
        with self._lock:
            return [_describe(s) for s in self._script]

    # Records ----------------------------------------------------------------------------------

    @property
    def deliveries(self) -> Deliveries:
        """The attempts that reached this endpoint, in order."""
        records: Deliveries = self._owner.deliveries
        return records.filter(where=self._is_mine)

    def _is_mine(self, delivery: Delivery) -> bool:
        return _same(delivery.destination_url, self.url)

    @property
    def called(self) -> bool:
        return self.deliveries.called

    @property
    def call_count(self) -> int:
        return self.deliveries.call_count

    @property
    def last(self) -> Delivery:
        return self.deliveries.last

    def __repr__(self) -> str:
        return f"<Endpoint {self.url} unused={self.unused}>"


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path or '/'}"


def _same(url: str, endpoint_url: str) -> bool:
    return _base(url) == _base(endpoint_url)


class ScriptedResponder:
    """Answers for scripted endpoints; anything else goes on to the rest of the router."""

    def __init__(self, virtual: bool) -> None:
        self.virtual = virtual
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()

    def add(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._endpoints[_base(endpoint.url)] = endpoint

    def remove(self, endpoint: Endpoint) -> None:
        with self._lock:
            if self._endpoints.get(_base(endpoint.url)) is endpoint:
                del self._endpoints[_base(endpoint.url)]

    async def respond(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response | None:
        if not self._endpoints:
            return None
        with self._lock:
            endpoint = self._endpoints.get(_base(url))
        step = endpoint.take() if endpoint is not None else None
        if step is None:
            return None
        if step is REFUSE:
            raise DeliveryError.refused(url)
        if step is HANG:
            if not self.virtual:
                await asyncio.sleep(timeout_s)
            raise DeliveryError.timed_out(timeout_s)
        if not isinstance(step, Reply):
            assert callable(step)
            step = await _call(step, AttemptRequest(method, url, headers, body), timeout_s)
        return Response(step.status, list(step.headers.items()), step.body)


async def _call(handler: Handler, request: AttemptRequest, timeout_s: float) -> Reply:
    """Run a scripted function off the emulator's event loop (it may call the emulator with
    a blocking client); an exception becomes a 500 whose body names it."""

    def run() -> Reply | int:
        answer = handler(request)
        if inspect.isawaitable(answer):
            answer = asyncio.run(_awaited(answer))
        return answer

    try:
        async with asyncio.timeout(timeout_s):
            answer = await asyncio.to_thread(run)
    except TimeoutError as exc:
        raise DeliveryError.timed_out(timeout_s) from exc
    except Exception as exc:
        name = getattr(handler, "__name__", repr(handler))
        return Reply(500, {"Content-Type": "text/plain"}, _raised(name, exc).encode())
    if isinstance(answer, bool) or not isinstance(answer, int | Reply):
        name = getattr(handler, "__name__", repr(handler))
        text = f"handler {name} returned {answer!r}: expected a status or reply(...)"
        return Reply(500, {"Content-Type": "text/plain"}, text.encode())
    return Reply(answer) if isinstance(answer, int) else answer


async def _awaited(answer: Awaitable[Reply | int]) -> Reply | int:
    return await answer


def _raised(name: str, exc: BaseException) -> str:
    return f"handler {name} raised {type(exc).__name__}: {exc}"
