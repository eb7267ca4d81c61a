"""``qstash-emulator wait``: exit 0 once a dev server is ready, 1 with the reason otherwise."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import version

import pytest

from qstash_emulator import Emulator
from qstash_emulator.server.wait import NotReady, wait_ready

from .helpers import Destination, EmulatorProcess, free_port


def _wait(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qstash_emulator", "wait", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_ready_server_is_exit_0(emulator: Emulator) -> None:
    done = _wait("--url", emulator.url, "--timeout", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"qstash-emulator {version('qstash-emulator')} is ready at {emulator.url} (store: memory"
    )


def test_the_url_defaults_to_qstash_url(emulator: Emulator) -> None:
    done = _wait("--timeout", "5", env={**os.environ, "QSTASH_URL": emulator.url + "/"})
    assert done.returncode == 0, done.stderr
    assert f"is ready at {emulator.url} " in done.stdout


def test_it_waits_for_a_server_that_starts_later() -> None:
    port = free_port()
    waiting = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "wait"]
        + ["--url", f"http://127.0.0.1:{port}", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server = EmulatorProcess(port=port)
        try:
            out, err = waiting.communicate(timeout=30)
        finally:
            server.stop()
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err
    assert f"is ready at http://127.0.0.1:{port}" in out


def test_connection_refused_until_the_timeout_is_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = _wait("--url", url, "--timeout", "1")
    assert done.returncode == 1
    assert done.stderr == (
        f"qstash-emulator wait: {url} not ready after 1s: cannot connect "
        "([Errno 111] Connection refused)\n"
    )
    assert time.monotonic() - started >= 1


def test_another_server_on_the_port_is_exit_1_at_once(destination: Destination) -> None:
    started = time.monotonic()
    done = _wait("--url", destination.url, "--timeout", "30")
    assert done.returncode == 1
    assert done.stderr == (
        f"qstash-emulator wait: {destination.url} answered GET /_emulator/health with 200 'ok': "
        "not a qstash-emulator (another server on this port, or an older version without the "
        "probe?)\n"
    )
    assert time.monotonic() - started < 25


def _loopback_name() -> str:
    """A name other than localhost that this machine resolves to a loopback address."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        addresses = set()
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        pytest.skip(f"this machine's name {name!r} does not resolve to loopback only")
    return name


def test_a_name_the_server_refuses_is_exit_1_at_once_naming_allowed_hosts(
    emulator: Emulator,
) -> None:
    name = _loopback_name()
    url = f"http://{name}:{emulator.port}"
    started = time.monotonic()
    done = _wait("--url", url, "--timeout", "30")
    assert done.returncode == 1
    assert done.stderr == (
        f"qstash-emulator wait: {url} is a qstash-emulator that does not answer to the name "
        f"{name!r}: start it with --allowed-hosts {name}, or wait on "
        f"http://127.0.0.1:{emulator.port}\n"
    )
    assert time.monotonic() - started < 25


def test_a_name_given_to_allowed_hosts_is_waited_on() -> None:
    name = _loopback_name()
    with Emulator(allowed_hosts=(name,)) as emu:
        done = _wait("--url", f"http://{name}:{emu.port}", "--timeout", "5")
    assert done.returncode == 0, done.stderr


def test_a_503_is_waited_out(destination: Destination) -> None:
    unavailable = (503, {}, b'{"error": "store unavailable"}')
    ready = (200, {}, b'{"status": "ok", "emulator": "qstash-emulator", "version": "x"}')
    destination.script("/_emulator/health", unavailable, unavailable, ready)
    assert wait_ready(destination.url, 30)["version"] == "x"
    assert len(destination.received) == 3


def test_a_503_until_the_timeout_is_the_reason(destination: Destination) -> None:
    destination.script("/_emulator/health", (503, {}, b'{"error": "store unavailable"}'))
    with pytest.raises(NotReady) as raised:
        wait_ready(destination.url, 0)
    assert str(raised.value) == (
        f"{destination.url} not ready after 0s: answered 503 'store unavailable'"
    )


def test_a_url_without_a_scheme_is_a_usage_error() -> None:
    done = _wait("--url", "localhost:8080")
    assert done.returncode == 2
    assert "argument --url: expected an http:// or https:// URL, not 'localhost:8080'" in (
        done.stderr
    )
