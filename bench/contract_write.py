"""What ``--qstash-contract`` costs a 500-test suite: the end of the session (build the
contract from every use, write it; or build it and compare it with the committed file), and
the suite's time with and without recording.

``python bench/contract_write.py [TESTS]`` generates a suite of TESTS tests (default 500) in a
temporary directory: each publishes one or two messages, through the official SDK, to one of
25 services with bodies whose fields and values vary by test, every tenth creates a schedule.
It runs the suite in process three times (no contract, writing one, checking against it),
timing ``ContractPlugin.pytest_sessionfinish`` itself, and prints the figures.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest_plugin._contract import ContractPlugin

SUITE_HEAD = """
import time
import uuid


def publish(qstash, n):
    client = qstash.client()
    body = {"id": n, "sku": f"s{n % 7}", "qty": n % 5, "at": time.time(),
            "ref": str(uuid.uuid4()), "tags": ["a"] * (n % 3)}
    if n % 4 == 0:
        body["note"] = "gift"
    client.message.publish_json(
        url=f"https://svc{n % 25}.example.com/orders/{n}", body=body, retries=n % 3,
        headers={"X-Tenant": f"t{n % 2}"},
    )
    if n % 3 == 0:
        client.message.publish(url=f"https://svc{n % 25}.example.com/audit", body=f"order {n}")
    if n % 10 == 0:
        client.schedule.create(destination=f"https://svc{n % 25}.example.com/nightly",
                               cron="0 3 * * *")
"""

TEST = """

def test_{n}(qstash):
    publish(qstash, {n})
"""


def _suite(root: Path, tests: int) -> None:
    text = SUITE_HEAD + "".join(TEST.format(n=n) for n in range(tests))
    (root / "test_generated.py").write_text(text)
    # Deliveries would need destinations; the contract is about what was published.
    (root / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(scope='session')\ndef qstash_config():\n"
        "    return {'checks': False}\n"
    )


def _timed(times: list[float]) -> Callable[..., Any]:
    original = ContractPlugin.pytest_sessionfinish

    def wrapper(self: ContractPlugin, session: pytest.Session) -> None:
        start = time.perf_counter()
        original(self, session)
        times.append(time.perf_counter() - start)

    wrapper.pytest_impl = original.pytest_impl  # type: ignore[attr-defined]
    return wrapper


def _run(root: Path, *args: str) -> float:
    start = time.perf_counter()
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")  # this script imported the plugin
    code = pytest.main([str(root), "-q", "-p", "no:cacheprovider", *quiet, *args])
    took = time.perf_counter() - start
    if code not in (0, pytest.ExitCode.OK):
        raise SystemExit(f"the generated suite failed ({code})")
    return took


def _per_message(count: int = 5_000) -> float:
    """Microseconds to normalise one accepted message into a use (the recording's cost)."""
    from qstash_emulator.contracts import Recorder
    from qstash_emulator.model.message import Message
    from qstash_emulator.model.options import PublishOptions

    recorder = Recorder()
    messages = [
        Message(
            id=f"msg_{n}",
            user="u",
            url=f"https://svc{n % 25}.example.com/orders/{n}",
            created_at=0,
            not_before=0,
            options=PublishOptions(
                retries=n % 3,
                header={"Content-Type": ["application/json"], "X-Tenant": [f"t{n % 2}"]},
            ),
            body=b'{"id": %d, "sku": "s1", "at": 1765151881.5, "tags": ["a"]}' % n,
        )
        for n in range(count)
    ]
    start = time.perf_counter()
    for msg in messages:
        recorder.add(recorder._usage("publish", msg))
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    tests = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    finish: list[float] = []
    ContractPlugin.pytest_sessionfinish = _timed(finish)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _suite(root, tests)
        contract = root / "contract.json"
        plain = [_run(root)]
        write = [_run(root, "--qstash-contract", str(contract), "--qstash-contract-update")]
        check = [_run(root, "--qstash-contract", str(contract))]
        for _ in range(2):  # more rounds, alternating, for medians
            plain.append(_run(root))
            write.append(_run(root, "--qstash-contract", str(contract), "--qstash-contract-update"))
            check.append(_run(root, "--qstash-contract", str(contract)))
        size = contract.stat().st_size
        entries = contract.read_text().count('"kind":')
    writes, checks = finish[0::2], finish[1::2]
    print(f"\n{tests} tests, contract of {entries} entries, {size:,} bytes")
    print(f"end of session, writing:  median {statistics.median(writes) * 1000:.0f} ms {writes}")
    print(f"end of session, checking: median {statistics.median(checks) * 1000:.0f} ms {checks}")
    print(
        f"suite: {statistics.median(plain):.2f} s without, {statistics.median(write):.2f} s "
        f"writing, {statistics.median(check):.2f} s checking (medians of {len(plain)})"
    )
    runs = [_per_message() for _ in range(5)]
    print(f"recording one message: median {statistics.median(runs):.1f} us {runs}")


if __name__ == "__main__":
    main()
