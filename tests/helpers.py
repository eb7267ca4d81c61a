"""The tests' shared helpers, imported from here (fixtures stay in conftest.py): the
Authorization header, an httpx client and one-off requests for an emulator, ``error_of``,
``wait_until``, the official SDK client, the recording ``Destination`` server and its scripted
replies, the processes the tests start (a real redis-server, the emulator's own CLI, the JS
workflow app) and the few store shortcuts that have no public route."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from qstash import QStash
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from qstash_emulator import DEFAULT_USERS, Emulator
from qstash_emulator.api import all_routes
from qstash_emulator.delivery.transport import Response as Answer
from qstash_emulator.model.message import Message
from qstash_emulator.model.options import PublishOptions
from qstash_emulator.server.config import Settings
from qstash_emulator.server.runtime import Runtime
from qstash_emulator.server.serving import ThreadedServer


class Tokened(Protocol):
    """Anything that holds a token: an ``Emulator`` (its first user), a ``User``, a process."""

    @property
    def token(self) -> str: ...


class Served(Tokened, Protocol):
    @property
    def url(self) -> str: ...


def auth(who: Tokened | str) -> dict[str, str]:
    """The Authorization header that authenticates as ``who`` (or as the token itself)."""
    return {"Authorization": f"Bearer {who if isinstance(who, str) else who.token}"}


def api(
    server: Served,
    who: Tokened | str | None = None,
    *,
    anonymous: bool = False,
    timeout: float = 10,
) -> httpx.Client:
    """An httpx client on ``server``'s URL, authenticated as ``who`` (default: the server's own
    token), or sending no Authorization header with ``anonymous``; close it (``with``)."""
    headers = {} if anonymous else auth(server if who is None else who)
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


def request(
    server: Served, method: str, path: str, who: Tokened | str | None = None, **kwargs: Any
) -> httpx.Response:
    """One request to ``server`` authenticated as ``who`` (default: the server's own token);
    ``headers`` given add to the Authorization header."""
    headers = {**auth(server if who is None else who), **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, **kwargs)


def publish(server: Served, destination: str, body: bytes = b"payload", **headers: str) -> str:
    """Publish ``body`` to ``destination`` (a URL or a URL group) with ``headers``; the new
    message's id (a refused publish fails the test)."""
    r = request(server, "POST", f"/v2/publish/{destination}", headers=headers, content=body)
    assert r.status_code == 200, r.text
    return str(r.json()["messageId"])


def log_states(server: Served, message_id: str) -> list[str]:
    """The states of ``message_id``'s log rows, earliest first."""
    r = request(
        server, "GET", "/v2/logs", params={"messageId": message_id, "order": "earliestFirst"}
    )
    assert r.status_code == 200, r.text
    return [row["state"] for row in r.json()["logs"]]


def api_routes() -> list[BaseRoute]:
    """The API's routes as an app serves them, built on a runtime that is never started."""
    return all_routes(Runtime(Settings()))


def wait_until(
    predicate: Callable[[], object], timeout: float = 10, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true, or fail after ``timeout`` seconds naming ``what``."""
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


def fake_redis(emulator: Emulator) -> Any:
    """The in-memory store's fakeredis server: ``connected = False`` is a Redis outage.
    Internal: an outage has no public switch."""
    return emulator.runtime.store.redis.connection_pool.connection_kwargs["server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port.

    With ``durable``, every write is in its append-only file before it is answered
    (``appendfsync always``), so ``kill()`` then ``start()`` brings the same data back on the
    same port, as a Redis restart does.
    """

    def __init__(self, durable: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qe-redis-")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
        self._command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *persistence,
            "--dir",
            self.dir,
        ]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.port, self.proc, "redis-server")

    def kill(self) -> None:
        """SIGKILL: clients see refused connections until ``start()``."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


_DEV = (sys.executable, "-m", "qstash_emulator", "dev")


def start_dev(*args: str, stderr: int = subprocess.STDOUT) -> subprocess.Popen[str]:
    """``qstash-emulator dev ARGS`` started in a child process, its output a text pipe
    (stderr into it, unless given)."""
    return subprocess.Popen(
        [*_DEV, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def run_dev(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``qstash-emulator dev ARGS`` run to its end (one that refuses to start, ``--help``)."""
    return subprocess.run(
        [*_DEV, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def read_block(proc: subprocess.Popen[str]) -> tuple[dict[str, str], list[str]]:
    """The ``QSTASH_*`` lines of the block a dev server prints once it answers, read from its
    output as a CI script reads them, and every line read up to the block's end."""
    assert proc.stdout is not None
    block: dict[str, str] = {}
    lines: list[str] = []
    for line in proc.stdout:  # ends when the process does
        lines.append(line)
        name, _, value = line.strip().partition("=")
        if name.startswith("QSTASH_"):
            block[name] = value
        if name == "QSTASH_NEXT_SIGNING_KEY":
            return block, lines
    raise AssertionError(f"the process exited with {proc.wait()} before printing the block")


class EmulatorProcess:
    """``python -m qstash_emulator dev`` in a child process, as a user runs it."""

    def __init__(self, *args: str, port: int | None = None, token: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token or DEFAULT_USERS[0].token
        self.proc = start_dev("--port", str(self.port), *args)
        try:
            _wait_port(self.port, self.proc, "qstash-emulator")
            deadline = time.monotonic() + 10
            while httpx.get(f"{self.url}/v2/keys", headers=self.auth).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("qstash-emulator never answered /v2/keys")
                time.sleep(0.02)
        except BaseException:
            self.kill()
            raise

    @property
    def auth(self) -> dict[str, str]:
        return auth(self)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out


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
    """Answers every delivery in process, without a socket, when the test is about the API:
    ``emu.add_responder(Answering(...))``."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        self.answer = answer

    async def respond(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Answer:
        return self.answer(method, url)


def error_of(r: httpx.Response) -> str:
    assert r.headers["content-type"] == "application/json", r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return str(body["error"])


async def add_delayed(emulator: Emulator, count: int) -> None:
    """``count`` messages an hour away, stored at once (publishing them would take longer
    than looking at them)."""
    now = emulator.clock.now_ms()
    messages = []
    for n in range(count):
        msg = Message(
            f"msg_{n:05d}",
            "defaultUser",
            f"http://127.0.0.1:9/{n}",
            now,
            now + 3_600_000,
            PublishOptions(retries=3),
        )
        msg.due = msg.not_before
        messages.append(msg)
    # Internal: 10,001 messages written at once; publishing them one by one takes minutes.
    await emulator.runtime.store.add(messages, [])


JS = Path(__file__).parent / "js"


class JsApp:
    """The node process: its workflows' URL, and calls into its ``Client``. It talks to
    ``target``: an emulator, or the QSTASH_* variables of one (a server in another process)."""

    def __init__(self, target: Emulator | dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QSTASH_", "UPSTASH_"))}
        env.update(target.env() if isinstance(target, Emulator) else target)
        env["UPSTASH_DISABLE_TELEMETRY"] = "1"
        # The SDK warns on stderr (retried calls, duplicate steps): a file, never a full pipe.
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            ["node", "workflow_app.mjs"],
            cwd=JS,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"workflow_app.mjs did not start: {self.stderr()}"
        self.url: str = json.loads(line)["url"]
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def do(self, method: str, *args: Any, target: str = "client") -> Any:
        """Call ``client.<method>(*args)`` (``client.dlq.<method>`` with target="dlq")."""
        response = self.http.post("/_do", json={"target": target, "method": method, "args": args})
        if response.status_code != 200:
            raise JsError(response.json())
        return response.json()

    def results(self, name: str) -> list[Any]:
        found: list[Any] = self.http.get("/_do/results").json().get(name, [])
        return found

    def clear(self) -> None:
        self.http.delete("/_do/results")

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


class JsError(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["error"])
        self.status = body.get("status")
