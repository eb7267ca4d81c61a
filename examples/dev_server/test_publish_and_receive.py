"""Runs the script against a real ``qstash-emulator dev`` process, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("publish_and_receive.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dev_server() -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSTASH")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("qstash-emulator dev did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_script_against_the_dev_server(dev_server: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSTASH")}
    env["QSTASH_URL"] = dev_server  # token and keys: the dev server's defaults
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "published; the delayed message is delayed"
    assert sorted(lines[1:]) == [
        "/flaky: 200 retried=1, signature ok",
        "/flaky: 503 retried=0, signature ok",
        "/hello: 200 retried=0, signature ok",
        "/later: 200 retried=0, signature ok",
    ]
