"""The live feed of ``qstash-emulator dev``, read from the real server's output: one line per
event, coloured on a terminal, plain when piped, bodies only when asked, off with --quiet."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

import httpx
import pytest
from qstash import QStash

from qstash_emulator import DEFAULT_USERS
from qstash_emulator.server.feed import Feed

from .helpers import Destination, auth, free_port, wait_until

TOKEN = DEFAULT_USERS[0].token
OTHER = DEFAULT_USERS[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STAMP = r"\d\d:\d\d:\d\d\.\d\d\d "


class DevServer:
    """``python -m qstash_emulator dev`` with its output read line by line as it comes, from a
    pipe or from a pseudo-terminal."""

    def __init__(self, *args: str, tty: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self._clients: list[QStash] = []
        self._cond = threading.Condition()
        argv = [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(self.port), *args]
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if tty:
            leader, follower = pty.openpty()
            self.proc = subprocess.Popen(
                argv, stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
            )
            os.close(follower)
            source: BinaryIO = os.fdopen(leader, "rb", buffering=0)
        else:
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            assert self.proc.stdout is not None
            source = self.proc.stdout
        self._reader = threading.Thread(target=self._read, args=(source,), daemon=True)
        self._reader.start()
        self.wait_for(r"^QSTASH_TOKEN=")
        wait_until(self._answers, 15, "the dev server to answer")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/keys", headers=self.auth).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def auth(self) -> dict[str, str]:
        return auth(TOKEN)

    def _read(self, source: BinaryIO) -> None:
        with source:
            self._lines_from(source)

    def _lines_from(self, source: BinaryIO) -> None:
        buffer = b""
        while True:
            try:
                chunk = source.read(65536) if isinstance(source, io.FileIO) else source.read1(65536)
            except OSError:  # the pty closes with EIO when the child exits
                chunk = b""
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            with self._cond:
                self.lines.extend(c.decode().rstrip("\r") for c in complete)
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10) -> str:
        """The first line matching ``pattern`` (colours removed), once it has been printed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if regex.search(ANSI.sub("", line)):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = "\n".join(self.lines)
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout}s:\n{shown}"
                    )
                self._cond.wait(left)

    def client(self, token: str = TOKEN) -> QStash:
        """The official SDK pointed at this server; closed when the server stops."""
        client = QStash(token, base_url=self.url)
        self._clients.append(client)
        return client

    def stop(self) -> str:
        for client in self._clients:
            client.http._client.close()
        self.proc.terminate()
        self.proc.wait(10)
        self._reader.join(5)
        return "\n".join(self.lines)


@pytest.fixture
def piped() -> Iterator[DevServer]:
    server = DevServer()
    yield server
    server.stop()


def test_piped_feed_is_plain_one_line_per_event(piped: DevServer, destination: Destination) -> None:
    client = piped.client()
    ok = client.message.publish(url=f"{destination.url}/ok", body="secret-body-text")
    line = piped.wait_for(rf"^{STAMP}published +{ok.message_id} -> POST {destination.url}/ok$")
    assert "\x1b" not in line
    piped.wait_for(rf"^{STAMP}delivered +{ok.message_id} status 200 in \d+ ms <- .*/ok$")

    destination.script("/down", (500, {}, b"no"), (503, {}, b"no"))
    down = client.message.publish(
        url=f"{destination.url}/down",
        body="x",
        retries=1,
        retry_delay="50",
        callback=f"{destination.url}/cb",
    )
    piped.wait_for(
        rf"^{STAMP}retry +{down.message_id} status 500 \(attempt 1 of 2\), retry in 0.05s <- "
    )
    piped.wait_for(
        rf"^{STAMP}failed +{down.message_id} status 503; no retries left \(1 of 1 used\), "
        "dead-lettered <- "
    )
    piped.wait_for(
        rf"^{STAMP}callback +msg_\w+ of {down.message_id} status 200 in \d+ ms <- .*/cb$"
    )

    schedule = client.schedule.create(destination=f"{destination.url}/cron", cron="0 0 1 1 *")
    httpx.post(f"{piped.url}/_emulator/run-now/{schedule}", headers=piped.auth).raise_for_status()
    piped.wait_for(rf"^{STAMP}schedule +{schedule} fired: msg_\w+ -> POST .*/cron$")

    client.queue.upsert("jobs")
    client.queue.pause("jobs")
    piped.wait_for(rf"^{STAMP}queue +jobs paused$")
    client.queue.resume("jobs")
    piped.wait_for(rf"^{STAMP}queue +jobs resumed$")

    other = piped.client(OTHER.token)
    theirs = other.message.publish(url=f"{destination.url}/other", body="x")
    piped.wait_for(rf"^{STAMP}published +\[{OTHER.user_id}\] {theirs.message_id} -> ")

    out = piped.stop()
    assert "secret-body-text" not in out  # never bodies unless asked
    assert "\x1b" not in out


def test_feed_is_coloured_on_a_terminal(destination: Destination) -> None:
    server = DevServer(tty=True)
    try:
        client = server.client()
        sent = client.message.publish(url=f"{destination.url}/tty", body="x")
        delivered = server.wait_for(rf"delivered +{sent.message_id}")
        assert "\x1b[32mdelivered" in delivered
        assert "\x1b[2m" in delivered  # the time stamp, dimmed
    finally:
        server.stop()


def test_show_bodies_prints_message_and_response_bodies(destination: Destination) -> None:
    destination.script("/echo", (200, {}, b"response-text"))
    server = DevServer("--show-bodies")
    try:
        client = server.client()
        client.message.publish(url=f"{destination.url}/echo", body="request-text")
        server.wait_for(r"^ +body: 'request-text'$")
        server.wait_for(r"^ +body: 'response-text'$")
    finally:
        server.stop()


def test_quiet_prints_no_feed(destination: Destination) -> None:
    server = DevServer("--quiet")
    try:
        client = server.client()
        client.message.publish(url=f"{destination.url}/quiet", body="x")
        destination.wait(1, "/quiet")
        # The delivered attempt is recorded by now; a feed line would follow within its flush.
        wait_until(
            lambda: httpx.get(f"{server.url}/_emulator/attempts", headers=server.auth).json()[
                "attempts"
            ],
            5,
            "the attempt to be recorded",
        )
        time.sleep(0.2)
    finally:
        out = server.stop()
    assert "QSTASH_TOKEN=" in out
    assert not re.search(rf"^{STAMP}", out, flags=re.M), out


@pytest.mark.slow
def test_output_nobody_reads_never_holds_up_the_server(destination: Destination) -> None:
    # A pipe holds 64 KiB and the feed keeps 10,000 lines waiting: 6,000 messages print
    # 12,000 lines of ~120 bytes, so the feed must drop some rather than wait.
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    creds = auth(TOKEN)
    try:
        wait_until(lambda: _answers(url, creds), 15, "the dev server to answer")
        with httpx.Client(base_url=url, headers=creds, timeout=30) as http:
            for start in range(0, 6_000, 500):
                batch = [
                    {"destination": f"{destination.url}/unread/{n}", "body": "x"}
                    for n in range(start, start + 500)
                ]
                http.post("/v2/batch", json=batch).raise_for_status()
        destination.wait(6_000, timeout=90)
        assert httpx.get(f"{url}/v2/keys", headers=creds).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    text = out.decode()
    assert re.search(r"^\.\.\. \d+ lines dropped: the output is read too slowly$", text, re.M)


def _answers(url: str, auth: dict[str, str]) -> bool:
    try:
        return httpx.get(f"{url}/v2/keys", headers=auth).status_code == 200
    except httpx.TransportError:
        return False


def test_the_feed_masks_passwords_and_tokens_in_urls(
    piped: DevServer, destination: Destination
) -> None:
    where = destination.url.replace("http://", "http://ann:hunter2@") + "/s?api_key=k1&page=2"
    callback = f"{destination.url}/cb?qstash_token=tok1"
    r = httpx.post(
        f"{piped.url}/v2/publish/{where}",
        headers={**piped.auth, "Upstash-Callback": callback},
        content=b"x",
    )
    msg = r.json()["messageId"]
    shown = where.replace("hunter2", "***").replace("k1", "***")
    assert "ann:***@" in shown and "api_key=***&page=2" in shown
    piped.wait_for(rf"^{STAMP}published +{msg} -> POST {re.escape(shown)}$")
    piped.wait_for(rf"^{STAMP}delivered +{msg} status 200 in \d+ ms <- {re.escape(shown)}$")
    piped.wait_for(rf"^{STAMP}callback +msg_\w+ of {msg} .* <- .*/cb\?qstash_token=\*\*\*$")
    out = piped.stop()
    assert "hunter2" not in out and "k1" not in out and "tok1" not in out


class _Writes(io.StringIO):
    """An output that remembers each write the feed's thread makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_lines_made_together_reach_the_writer_together() -> None:
    out = _Writes()
    feed = Feed(out, color=False, default_user="me")

    async def bursts() -> None:
        for n in range(20):
            feed.queue_paused("me", f"q{n}", True)
            time.sleep(0.002)  # the writer thread could run here: it must have nothing yet
        await asyncio.sleep(0)  # the loop's next turn, within the same hand-over
        feed.queue_paused("me", "q20", True)
        deadline = time.monotonic() + 5
        while "q20 paused" not in out.getvalue() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    asyncio.run(bursts())
    feed.close()
    assert len(out.writes) == 1, out.writes  # one hand-over, one write: not one per line
    lines = out.writes[0].splitlines()
    assert [line.split(maxsplit=2)[2] for line in lines] == [f"q{n} paused" for n in range(21)]


def test_lines_from_outside_the_loop_and_at_close_are_written() -> None:
    out = _Writes()
    feed = Feed(out, color=False, default_user="me")
    feed.queue_paused("me", "outside", True)  # no running loop in this thread
    wait_until(lambda: "outside paused" in out.getvalue(), 5, "the line to be written")

    async def last_turn() -> None:
        feed.queue_paused("someone", "last", False)  # its turn never ends before close

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(last_turn())
    finally:
        loop.close()
    feed.close()
    assert out.getvalue().splitlines()[-1].endswith("queue     [someone] last resumed")
