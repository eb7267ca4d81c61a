"""``qstash-emulator dev``: options, the .env banner, and the official SDK against it."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from qstash_emulator import DEFAULT_USERS
from qstash_emulator.server.cli import banner
from qstash_emulator.server.config import FLAGS, Settings, settings_from

from .helpers import (
    Destination,
    EmulatorProcess,
    Held,
    auth,
    read_block,
    run_dev,
    start_dev,
    wait_until,
)


def test_help_documents_every_option_and_its_variable() -> None:
    done = run_dev("--help")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    flat = " ".join(out.split())
    for option in FLAGS:
        assert option.flag in out
        assert option.env in flat


def test_banner_is_the_env_block() -> None:
    text = banner(Settings(), "http://127.0.0.1:8080")
    lines = text.splitlines()
    assert "Upstash QStash development server is running at http://127.0.0.1:8080" in lines
    assert "QSTASH_URL=http://127.0.0.1:8080" in lines
    assert (
        "QSTASH_TOKEN=eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
        in lines
    )
    assert "QSTASH_CURRENT_SIGNING_KEY=sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r" in lines
    assert "QSTASH_NEXT_SIGNING_KEY=sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs" in lines
    assert any(line.startswith("curl -X POST http://127.0.0.1:8080/v2/publish/") for line in lines)
    # The other users' tokens are in a README this installation has (a wheel ships it).
    where = lines[-1].split("'The dev server' in ", 1)[1].rstrip(")")
    assert lines[-1].startswith("Other test users: testUser1, testUser2, testUser3 (their tokens")
    assert "| testUser1 | `eyJ" in Path(where).read_text(encoding="utf-8")


def test_banner_masks_the_redis_password() -> None:
    settings = Settings(redis_url="rediss://default:hunter2@eu1.example.io:6379/0")
    lines = banner(settings, "http://127.0.0.1:8080").splitlines()
    assert "State: rediss://default:***@eu1.example.io:6379/0" in lines
    assert "hunter2" not in "\n".join(lines)


def test_settings_from_flags_environment_and_aliases() -> None:
    env = {
        "QSTASH_DEV_PORT": "9999",
        "QSTASH_EMULATOR_DEDUP_WINDOW": "2m",
        "QSTASH_EMULATOR_MAX_MESSAGE_SIZE": "1MB",
        "QSTASH_TOKEN": "tok",
    }
    settings = settings_from({"port": 7000}, env)
    assert settings.port == 7000  # a flag beats the environment
    assert settings.dedup_window_s == 120
    assert settings.message_size_limit == 1 << 20
    assert settings.users[0].token == "tok"
    assert settings.users[0].current_signing_key == "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
    assert settings_from({}, {}).port == 8080
    names = {"QSTASH_EMULATOR_ALLOWED_HOSTS": "qstash, My.Tunnel.example,"}
    assert settings_from({}, names).allowed_hosts == ("qstash", "my.tunnel.example")


def test_dev_server_runs_and_serves_the_sdk(destination: Destination) -> None:
    from qstash import QStash

    proc = EmulatorProcess("--token", "custom-token", "--quota", "pro", token="custom-token")
    try:
        client = QStash("custom-token", base_url=proc.url)
        client.message.publish(url=destination.url + "/cli", body="from the cli")
        client.http._client.close()
        (got,) = destination.wait(1, "/cli")
        assert got.body == b"from the cli"
        assert (
            httpx.get(
                f"{proc.url}/v2/keys",
                headers={
                    "Authorization": "Bearer eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBh"
                    "c3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
                },
            ).status_code
            == 401
        )
    finally:
        out = proc.stop()
    assert f"QSTASH_URL=http://127.0.0.1:{proc.port}" in out
    assert "QSTASH_TOKEN=custom-token" in out


def test_bad_option_is_a_clear_error() -> None:
    done = run_dev("--quota", "gold")
    assert done.returncode == 2
    assert "--quota must be one of free, payg, pro, unlimited" in done.stderr


def test_a_bad_redis_url_is_a_clear_error_without_its_password() -> None:
    done = run_dev("--redis-url", "redis://:s3cret@h:abc/0")
    assert done.returncode == 2
    assert done.stderr == (
        "qstash-emulator: --redis-url redis://:***@h:abc/0: "
        "Port could not be cast to integer value as 'abc'\n"
    )


def test_exposed_bind_warns() -> None:
    proc = start_dev("--host", "0.0.0.0", "--port", "0", stderr=subprocess.PIPE)
    try:
        read_block(proc)  # it answers
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "WARNING: listening on 0.0.0.0" in err


def test_port_0_prints_the_port_actually_bound() -> None:
    proc = start_dev("--port", "0", "--quiet")
    try:
        block, _ = read_block(proc)
        url = block["QSTASH_URL"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0"), url
        r = httpx.get(f"{url}/v2/keys", headers=auth(DEFAULT_USERS[0].token))
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_dev("--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "QSTASH_URL" not in done.stdout


def _start_and_call_at_once() -> None:
    proc = start_dev("--port", "0", "--quiet")
    try:
        env, _ = read_block(proc)
        # At once, no retry: the block promises a server that answers.
        r = httpx.get(
            f"{env['QSTASH_URL']}/v2/keys",
            headers=auth(env["QSTASH_TOKEN"]),
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "current": env["QSTASH_CURRENT_SIGNING_KEY"],
            "next": env["QSTASH_NEXT_SIGNING_KEY"],
        }
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_the_block_is_printed_once_the_server_answers() -> None:
    """The block was printed before the port listened: a request sent on reading it was
    refused in 10 of 10 starts (the port listened 54-127 ms later)."""
    for _ in range(3):
        _start_and_call_at_once()


@pytest.mark.slow
@pytest.mark.timeout(300)  # 2-5 s a start on a loaded machine
def test_the_block_is_printed_once_the_server_answers_every_time() -> None:
    for _ in range(15):
        _start_and_call_at_once()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _slow_delivery(destination: Destination, *args: str) -> tuple[EmulatorProcess, Held]:
    """A dev server with one delivery under way to an endpoint that answers when released."""
    held = Held()
    destination.script("/slow", held)  # type: ignore[arg-type]
    proc = EmulatorProcess(*args)
    r = httpx.post(f"{proc.url}/v2/publish/{destination.url}/slow", headers=proc.auth)
    assert r.status_code == 200, r.text
    assert held.entered.wait(10)
    return proc, held


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_lets_the_delivery_under_way_finish_then_exits_0(
    destination: Destination, sig: signal.Signals
) -> None:
    """SIGTERM exited 143 and SIGINT 130 with a traceback, dropping the delivery."""
    proc, held = _slow_delivery(destination)
    proc.proc.send_signal(sig)
    wait_until(lambda: not _listening(proc.port), what="the port to close")  # at once
    held.release.set()
    text, _ = proc.proc.communicate(timeout=15)
    assert proc.proc.returncode == 0, text
    assert "delivered" in text and "status 200" in text, text
    assert "Traceback" not in text
    assert len(destination.received) == 1


def test_a_delivery_that_outlasts_the_drain_is_dropped_and_the_exit_says_so(
    destination: Destination,
) -> None:
    proc, held = _slow_delivery(destination, "--drain-timeout", "1s")
    try:
        proc.proc.send_signal(signal.SIGTERM)
        text, _ = proc.proc.communicate(timeout=15)
    finally:
        held.release.set()
    assert proc.proc.returncode == 1, text
    assert (
        "qstash-emulator: --drain-timeout 1s passed with 1 deliveries and 0 requests under "
        "way; they were dropped" in text
    )
    assert "delivered" not in text


def test_a_bad_drain_timeout_is_a_clear_error() -> None:
    done = run_dev("--drain-timeout", "soon")
    assert done.returncode == 2
    assert "argument --drain-timeout: 'soon' is not a duration such as 10s" in done.stderr


def test_a_second_signal_stops_at_once_and_the_exit_says_so(destination: Destination) -> None:
    proc, held = _slow_delivery(destination)
    try:
        proc.proc.send_signal(signal.SIGTERM)
        # The first one is being handled: the port is closed, the delivery still under way.
        wait_until(lambda: not _listening(proc.port), what="the port to close")
        proc.proc.send_signal(signal.SIGINT)
        text, _ = proc.proc.communicate(timeout=5)  # well within the 10 s drain
    finally:
        held.release.set()
    assert proc.proc.returncode == 1, text
    assert (
        "qstash-emulator: a second signal came with 1 deliveries and 0 requests under way; "
        "they were dropped" in text
    )


def test_a_bad_option_value_is_a_usage_error_naming_it() -> None:
    """A bad duration crashed with a traceback (BadRequest), flag or environment alike."""
    for args, env, said in [
        (["--dedup-window", "xx"], {}, "argument --dedup-window: 'xx' is not a duration"),
        (["--port", "x"], {}, "argument --port: 'x' is not a whole number"),
        (["--max-message-size", "lots"], {}, "argument --max-message-size: 'lots' is not a size"),
        ([], {"QSTASH_EMULATOR_DEDUP_WINDOW": "xx"}, "QSTASH_EMULATOR_DEDUP_WINDOW: 'xx' is not"),
    ]:
        done = run_dev("--port", "0", *args, env=env)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
