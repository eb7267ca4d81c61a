"""Publish to a local receiver through the dev server and print what arrives, signature checked.

Start the server, then run this script in another terminal:

    qstash-emulator dev
    python examples/dev_server/publish_and_receive.py

It reads the variables the server prints (``QSTASH_URL``, ``QSTASH_TOKEN`` and the two signing
keys) and falls back to the dev server's well-known defaults.
"""

from __future__ import annotations

import os
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from qstash import QStash, Receiver

URL = os.environ.get("QSTASH_URL", "http://127.0.0.1:8080")
TOKEN = os.environ.get(
    "QSTASH_TOKEN", "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
)
CURRENT_KEY = os.environ.get("QSTASH_CURRENT_SIGNING_KEY", "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r")
NEXT_KEY = os.environ.get("QSTASH_NEXT_SIGNING_KEY", "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs")

arrivals: queue.Queue[tuple[str, str, str]] = queue.Queue()
failures_left = {"/flaky": 1}  # the first call to /flaky fails, so QStash retries it


class Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        try:
            Receiver(CURRENT_KEY, NEXT_KEY).verify(
                signature=self.headers["Upstash-Signature"], body=body, url=url
            )
            verdict = "signature ok"
        except Exception as exc:
            verdict = f"signature rejected: {exc}"
        status = 200
        if failures_left.get(self.path, 0) > 0:
            failures_left[self.path] -= 1
            status = 503
        arrivals.put((self.path, f"{status} retried={self.headers['Upstash-Retried']}", verdict))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    here = f"http://127.0.0.1:{server.server_port}"
    client = QStash(TOKEN, base_url=URL)
    try:
        client.message.publish_json(url=f"{here}/hello", body={"greeting": "hi"})
        client.message.publish_json(url=f"{here}/flaky", body={}, retry_delay="200")
        delayed = client.message.publish_json(url=f"{here}/later", body={}, delay=1)
        # The emulator's inspection API (not part of QStash) shows what is still waiting.
        waiting = httpx.get(
            f"{URL}/_emulator/messages", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()["messages"]
        states = {m["messageId"]: m["state"] for m in waiting}
        print(f"published; the delayed message is {states.get(delayed.message_id)}")
        for _ in range(4):  # hello, flaky (503), flaky again (200), later
            path, result, verdict = arrivals.get(timeout=15)
            print(f"{path}: {result}, {verdict}")
    finally:
        client.http._client.close()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
