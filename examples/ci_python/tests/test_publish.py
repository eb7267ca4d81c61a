"""The project's own test, run in CI against the dev server (``ci.sh``, ``github-workflow.yml``).

It reads the variables the server prints (``QSTASH_URL``, ``QSTASH_TOKEN`` and the signing
keys), publishes with the official ``qstash`` SDK to a receiver of its own, and checks that
the message arrives signed.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from qstash import QStash, Receiver

ENV = os.environ


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[str, str, str]]]]:
    arrived: queue.Queue[tuple[str, str, str]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            arrived.put((self.path, body, self.headers["Upstash-Signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", arrived
    server.shutdown()
    server.server_close()


def test_a_published_job_arrives_signed(
    receiver: tuple[str, queue.Queue[tuple[str, str, str]]],
) -> None:
    url, arrived = receiver
    client = QStash(ENV["QSTASH_TOKEN"], base_url=ENV["QSTASH_URL"])
    try:
        client.message.publish_json(url=f"{url}/jobs", body={"job": 1})
    finally:
        client.http._client.close()
    path, body, signature = arrived.get(timeout=15)
    assert (path, body) == ("/jobs", '{"job": 1}')
    keys = ENV["QSTASH_CURRENT_SIGNING_KEY"], ENV["QSTASH_NEXT_SIGNING_KEY"]
    Receiver(*keys).verify(signature=signature, body=body, url=f"{url}/jobs")
