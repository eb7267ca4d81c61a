"""Processes the tests start: a real redis-server, and the emulator's own CLI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from qstash_emulator import DEFAULT_USERS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
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


class EmulatorProcess:
    """``python -m qstash_emulator dev`` in a child process, as a user runs it."""

    def __init__(self, *args: str, port: int | None = None, token: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token or DEFAULT_USERS[0].token
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
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
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return out.decode()
