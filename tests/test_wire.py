"""What goes on the wire: the host a destination is sent to, and its path exactly as written.

The rules: docs/behaviour.md#destinations.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qstash import Receiver

from qstash_emulator import DEFAULT_USERS, Emulator
from qstash_emulator.model.wire import wire_url

from .helpers import Destination, auth, wait_until

LONG_LABEL = "a" * 64


class RawServer:
    """A bare TCP server that records each request line as it arrived, and answers 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65_536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                pairs = [line.split(": ", 1) for line in head[1:] if ": " in line]
                headers = {name.lower(): value for name, value in pairs}
                self.requests.append((head[0], headers))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def wait(self, count: int) -> list[tuple[str, dict[str, str]]]:
        wait_until(lambda: len(self.requests) >= count, what=f"{count} requests")
        return self.requests[:count]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def _publish(emu: Emulator, destination: str, **headers: str) -> httpx.Response:
    creds = {**auth(emu), **headers}
    return httpx.post(f"{emu.url}/v2/publish/{destination}", headers=creds, content=b"hi")


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://h.example/x/../../admin?a=%2e", "/x/../../admin?a=%2e"),
        ("http://h.example/x/%2e%2e/%2E%2E/admin", "/x/%2e%2e/%2E%2E/admin"),
        ("http://h.example/./a//b/", "/./a//b/"),
        ("http://h.example", "/"),
        ("http://h.example/é?q=é", "/%C3%A9?q=%C3%A9"),
    ],
)
def test_the_path_is_sent_as_written(url: str, sent: str) -> None:
    assert wire_url(url).raw_path_qs == sent


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://bücher.example/x", "xn--bcher-kva.example"),
        ("http://b%C3%BCcher.example/x", "xn--bcher-kva.example"),  # as the SDKs encode it
        ("http://Local_Svc:8080/x", "local_svc"),
        ("http://[::1]:9/x", "::1"),
    ],
)
def test_the_host_is_idna_encoded(url: str, host: str) -> None:
    assert wire_url(url).raw_host == host


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://{LONG_LABEL}.example.com/x", "longer than 63 characters"),
        ("http://a..b/x", "an empty label"),
        ("http://\u2488.example/x", "an empty label"),  # IDNA maps it to "1."
        ("http://a\u200d.example/x", "cannot contain"),
        ("http://%ff/x", "not UTF-8"),
        ("http://%zz/x", "not a valid host name"),
        (f"http://{'a.' * 127}ab/x", "longer than 253 characters"),
    ],
)
def test_a_host_that_cannot_be_sent_is_a_value_error(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        wire_url(url)


BAD_HOSTS = [f"http://{LONG_LABEL}.example.com/x", "http://a..b/x", "http://%E2%92%88.example/x"]


@pytest.mark.parametrize("strict", [True, False])
def test_a_destination_the_client_cannot_send_is_400_not_500_nor_a_dead_letter(
    strict: bool,
) -> None:
    with Emulator(strict_destinations=strict) as emu:
        for url in BAD_HOSTS:
            r = _publish(emu, url)
            assert r.status_code == 400, r.text
            assert r.json()["error"].startswith(f"invalid destination: {url!r}: host ")
        r = _publish(emu, "http://93.184.215.14/x", **{"Upstash-Callback": BAD_HOSTS[1]})
        assert r.status_code == 400
        assert r.json()["error"].startswith(f"invalid Upstash-Callback: {BAD_HOSTS[1]!r}")
        creds = auth(emu)
        assert httpx.get(f"{emu.url}/_emulator/messages", headers=creds).json()["messages"] == []


def test_dot_segments_reach_the_destination_as_signed(emulator: Emulator, raw: RawServer) -> None:
    # In a batch's JSON: an HTTP client would remove them from a publish's own request path.
    paths = ["/x/../../admin", "/x/%2e%2e/%2E%2E/admin?a=1", "/./b"]
    batch = [{"destination": raw.url + path, "body": "hi"} for path in paths]
    creds = auth(emulator)
    r = httpx.post(f"{emulator.url}/v2/batch", headers=creds, json=batch)
    assert [slot["url"] for slot in r.json()] == [raw.url + path for path in paths]
    got = raw.wait(3)
    assert sorted(line for line, _ in got) == sorted(f"POST {p} HTTP/1.1" for p in paths)
    keys = DEFAULT_USERS[0]
    receiver = Receiver(keys.current_signing_key, keys.next_signing_key)
    for line, headers in got:
        path = line.split(" ")[1]
        receiver.verify(signature=headers["upstash-signature"], body="hi", url=raw.url + path)


def test_a_callback_path_is_sent_as_written(emulator: Emulator, raw: RawServer) -> None:
    callback = raw.url + "/cb/%2e%2e/done"
    r = _publish(emulator, raw.url + "/x", **{"Upstash-Callback": callback})
    assert r.status_code == 200
    got = raw.wait(2)
    assert sorted(line for line, _ in got) == ["POST /cb/%2e%2e/done HTTP/1.1", "POST /x HTTP/1.1"]


def test_an_app_mounted_in_process_gets_the_path_as_written(emulator: Emulator) -> None:
    seen: list[tuple[str, bytes]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["path"], scope["raw_path"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    emulator.mount("https://app.example", app)
    callback = "https://app.example/x/../admin"
    try:
        r = _publish(emulator, "https://app.example/x", **{"Upstash-Callback": callback})
        assert r.status_code == 200
        wait_until(lambda: len(seen) >= 2, what="a delivery and its callback")
        assert sorted(seen) == [("/x", b"/x"), ("/x/../admin", b"/x/../admin")]
    finally:
        emulator.unroute("https://app.example")


def test_an_absolute_redirect_is_followed_as_written(
    emulator: Emulator, raw: RawServer, destination: Destination
) -> None:
    destination.script("/moved", (307, {"Location": raw.url + "/r/%2e%2e/../z"}, b""))
    assert _publish(emulator, destination.url + "/moved").status_code == 200
    ((line, _),) = raw.wait(1)
    assert line == "POST /r/%2e%2e/../z HTTP/1.1"
