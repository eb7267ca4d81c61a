"""examples/contracts/ as docs/contracts.md runs it: the shop (producer) checks its use of
QStash against the committed contract, billing (consumer) replays the contract, in its suite
and with ``qstash-emulator replay`` against a running server; a change on either side that
breaks the other fails, saying what changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from werkzeug.serving import make_server

from examples.contracts import billing
from qstash_emulator.testing import new_signing_key

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).parent.parent / "examples" / "contracts"
CONTRACT = EXAMPLE / "orders.contract.json"
ORDERS = "POST https://billing.example.com/hooks/order-placed (publish)"


@pytest.fixture
def orders(pytester: pytest.Pytester) -> Path:
    """A copy of the example, to change as a developer would."""
    copy = pytester.path / "orders"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_shop_matches_its_committed_contract(pytester: pytest.Pytester, orders: Path) -> None:
    result = pytester.runpytest(
        "orders/test_shop.py", "--qstash-contract", "orders/orders.contract.json"
    )
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["orders/orders.contract.json: this run matches (1 entry)"])
    assert (orders / "orders.contract.json").read_bytes() == CONTRACT.read_bytes()


def test_renaming_a_body_field_in_the_shop_fails_its_check(
    pytester: pytest.Pytester, orders: Path
) -> None:
    for name in ("shop.py", "test_shop.py"):  # the rename, with the shop's own test updated
        _edit(orders / name, '"order_id"', '"orderId"')
    result = pytester.runpytest(
        "orders/test_shop.py", "--qstash-contract", "orders/orders.contract.json"
    )
    result.assert_outcomes(passed=1)  # the shop's tests pass: only the contract catches it
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "orders/orders.contract.json: this run's use of QStash differs from the contract*",
            # the example is a pytest project of its own (pytest.ini): ids start there
            f"changed: {ORDERS}, sent by test_shop.py::test_placing_an_order_tells_billing",
            "  body field 'order_id' removed",
            "  body field 'orderId' added (integer, in every body)",
            "  test_shop.py::test_placing_an_order_tells_billing sent a body the "
            "contract refuses: 'order_id' is a required property",
        ]
    )
    assert (orders / "orders.contract.json").read_bytes() == CONTRACT.read_bytes()

    updated = pytester.runpytest(
        "orders/test_shop.py",
        "--qstash-contract",
        "orders/orders.contract.json",
        "--qstash-contract-update",
    )
    assert updated.ret == 0
    updated.stdout.fnmatch_lines(["orders/orders.contract.json: rewritten (1 entry)"])
    assert b'"orderId": 1001' in (orders / "orders.contract.json").read_bytes()


def test_billing_accepts_what_the_shop_sends(pytester: pytest.Pytester, orders: Path) -> None:
    pytester.runpytest("orders/test_billing.py").assert_outcomes(passed=1)


def test_billing_requiring_a_new_field_fails_the_replay(
    pytester: pytest.Pytester, orders: Path
) -> None:
    _edit(orders / "billing.py", '"currency")', '"currency", "customer_email")')
    result = pytester.runpytest("orders/test_billing.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the consumer refused what producers send:",
            f"*refused   {ORDERS} -> POST https://billing.example.com/hooks/order-placed: "
            '400 {"error":"missing field customer_email"}',
            "*1 replayed: 0 accepted, 1 refused",
        ]
    )


@pytest.fixture
def billing_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Billing running on a real port, with signing keys of its own."""
    monkeypatch.setenv("QSTASH_CURRENT_SIGNING_KEY", new_signing_key())
    monkeypatch.setenv("QSTASH_NEXT_SIGNING_KEY", new_signing_key())
    server = make_server("127.0.0.1", 0, billing.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qstash_emulator", "replay", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_replay_command_against_a_running_consumer(
    billing_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _replay(str(CONTRACT), "--to", billing_server)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f'accepted  {ORDERS} -> POST {billing_server}/hooks/order-placed: 200 {{"billed":"1001"}}',
        "1 replayed: 1 accepted, 0 refused",
    ]

    monkeypatch.setattr(billing, "REQUIRED", (*billing.REQUIRED, "customer_email"))
    refused = _replay(str(CONTRACT), "--to", billing_server)
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[0] == (
        f"refused   {ORDERS} -> POST {billing_server}/hooks/order-placed: 400 "
        '{"error":"missing field customer_email"}'
    )


def test_replay_signs_with_the_keys_it_is_given(billing_server: str) -> None:
    other = ("--current-signing-key", new_signing_key(), "--next-signing-key", new_signing_key())
    done = _replay(str(CONTRACT), "--to", billing_server, *other)
    assert done.returncode == 1
    assert done.stdout.startswith(f"refused   {ORDERS} -> POST {billing_server}/hooks/")
    assert ': 401 {"error":"signature: ' in done.stdout


def test_replay_of_a_file_that_is_not_a_contract(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"entries": []}')
    done = _replay(str(bad), "--to", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"qstash-emulator replay: {bad}: not a qstash contract (version 1)"
    )


def test_replay_to_something_that_is_not_a_url() -> None:
    done = _replay(str(CONTRACT), "--to", "localhost:3000")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "qstash-emulator replay: invalid --to: 'localhost:3000': endpoint has invalid scheme, "
        "add http:// or https://"
    )


def test_replay_to_a_consumer_that_is_not_there() -> None:
    done = _replay(str(CONTRACT), "--to", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stdout.startswith(
        f"refused   {ORDERS} -> POST http://127.0.0.1:9/hooks/order-placed: no answer: "
    )


def test_an_entry_the_emulator_cannot_publish_is_refused(tmp_path: Path) -> None:
    document = orjson.loads(CONTRACT.read_bytes())
    document["entries"][0]["method"] = "BREW"
    path = tmp_path / "c.json"
    path.write_bytes(orjson.dumps(document))
    done = _replay(str(path), "--to", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "refused   BREW https://billing.example.com/hooks/order-placed (publish) -> BREW "
        "http://127.0.0.1:9/hooks/order-placed: no answer: the emulator refused the publish: "
        '{"error":"invalid Upstash-Method: \'BREW\'"}',
        "1 replayed: 0 accepted, 1 refused",
    ]
