"""qstash_emulator.contracts: what a contract records of real publishes, schedules and
workflow runs (through the official SDKs), how it normalises them, how a change reads, and
the dev server's --record-contract."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from qstash import QStash
from upstash_workflow import AsyncWorkflowContext

from qstash_emulator import Emulator, VirtualClock
from qstash_emulator.contracts import (
    Recorder,
    Usage,
    build,
    compare,
    dumps,
    load,
    loads,
    targets,
)
from qstash_emulator.contracts._normalise import mask_value, template, template_url
from qstash_emulator.model.headers import RULES, H
from qstash_emulator.model.options import OPTIONS, Option

from .helpers import EmulatorProcess, api
from .workflow_app import WorkflowApp


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(clock=VirtualClock()) as emulator:
        yield emulator


@pytest.fixture
def recorder(emulator: Emulator) -> Iterator[Recorder]:
    emulator.reset()
    recorder = Recorder()
    recorder.attach(emulator)
    yield recorder
    recorder.detach(emulator)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[QStash]:
    client = QStash(emulator.token, base_url=emulator.url)
    yield client
    client.http._client.close()


def entries(recorder: Recorder) -> dict[str, dict[str, Any]]:
    document = build(recorder.usages())
    return {f"{e['kind']} {e['destination']}": e for e in document["entries"]}


def test_ids_ports_and_run_to_run_values_are_normalised() -> None:
    assert template_url("https://x.example.com/orders/42/items/abc?page=3&sort=asc") == (
        "https://x.example.com/orders/{id}/items/abc?page={id}&sort=asc"
    )
    assert template_url("http://127.0.0.1:53211/u/0b8f9a3c-1111-4a4a-9e9e-123456789abc") == (
        "http://127.0.0.1:{port}/u/{id}"
    )
    assert template_url("http://localhost:3000/jobs/01HZX3K9Q7R2M4N5P6T8V9W0YZ") == (
        "http://localhost:{port}/jobs/{id}"
    )
    assert template_url("https://x.example.com:8443/v2/report-2024.pdf") == (
        "https://x.example.com:8443/v2/report-{id}.pdf"
    )
    assert template_url("https://x.example.com/hook?api_key=s3cr3t&n=1") == (
        "https://x.example.com/hook?api_key=***&n={id}"
    )
    assert template("tenant-42") == "tenant-{id}"
    assert mask_value(
        {
            "id": "0b8f9a3c-1111-4a4a-9e9e-123456789abc",
            "at": "2026-12-07T23:58:01.123456+00:00",
            "day": "2026-12-07",
            "ms": 1_765_151_881_123,
            "s": 1_765_151_881.5,
            "n": 42,
            "ok": True,
        }
    ) == {
        "id": "00000000-0000-4000-8000-000000000000",
        "at": "2000-01-01T00:00:00.000000+00:00",
        "day": "2000-01-01",
        "ms": 1_000_000_000_000,
        "s": 1_000_000_000.0,
        "n": 42,
        "ok": True,
    }


def test_a_publish_records_headers_body_schema_and_options(
    recorder: Recorder, client: QStash, emulator: Emulator
) -> None:
    url = "https://shop.example.com/orders/{}"
    client.message.publish_json(
        url=url.format(42),
        body={"order_id": 42, "items": [{"sku": "a"}], "at": "2026-12-07T10:00:00Z"},
        headers={"X-Tenant": "eu", "Authorization": "Bearer s3cr3t"},
        retries=2,
        delay="10s",
        callback="https://shop.example.com/cb/42",
        failure_callback="https://shop.example.com/failed",
        timeout="5s",
        deduplication_id="order-42",
        label="order-42",
        flow_control={"key": "tenant-42", "parallelism": 2, "rate": 10, "period": "1m"},
    )
    client.message.publish_json(
        url=url.format(7), body={"order_id": 7, "note": "x"}, headers={"X-Tenant": "us"}
    )
    client.message.enqueue(
        queue="mail-7",
        url="https://mail.example.com/send",
        body="hi",
        content_based_deduplication=True,
    )
    got = entries(recorder)
    assert sorted(got) == [
        "publish https://mail.example.com/send",
        "publish https://shop.example.com/orders/{id}",
    ]
    orders = got["publish https://shop.example.com/orders/{id}"]
    assert orders["method"] == "POST"
    assert orders["headers"] == {
        "authorization": "<redacted>",
        "content-type": "application/json",
        "x-tenant": None,
    }
    assert orders["body"] == {
        "format": "json",
        "schema": {
            "type": "object",
            "properties": {
                "at": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"sku": {"type": "string"}},
                        "required": ["sku"],
                    },
                },
                "note": {"type": "string"},
                "order_id": {"type": "integer"},
            },
            "required": ["order_id"],
        },
    }
    assert orders["options"] == [
        {
            "callback": {"url": "https://shop.example.com/cb/{id}"},
            "deduplication": "id",
            "delay": True,
            "failure_callback": {"url": "https://shop.example.com/failed"},
            "flow_control": {"key": "tenant-{id}", "parallelism": 2, "period": 60, "rate": 10},
            "labels": ["order-{id}"],
            "retries": 2,
            "timeout_ms": 5000,
        },
        {"retries": 3},
    ]
    assert orders["exemplar"] == {  # the smaller URL of the two
        "url": "https://shop.example.com/orders/42",
        "headers": {
            "authorization": "<redacted>",
            "content-type": "application/json",
            "x-tenant": "eu",
        },
        "body": {"at": "2000-01-01T00:00:00Z", "items": [{"sku": "a"}], "order_id": 42},
    }
    mail = got["publish https://mail.example.com/send"]
    assert mail["body"] == {"format": "text"}
    assert mail["options"] == [{"deduplication": "content", "queue": "mail-{id}", "retries": 3}]
    assert b"s3cr3t" not in dumps(build(recorder.usages()))


# The options a contract shows elsewhere than among a use's options: its method and headers
# are keys of their own, a run's headers make a workflow entry, a schedule's id is the
# emulator's. Every other option, a new one too, is among them (docs/contracts.md).
_ELSEWHERE = ("method", "header", "workflow", "schedule_id")
# Headers that go with an option's own, and values where its documented example would not do
# (a not-before time in the past is no delay).
_WITH = {H.FLOW_KEY: {H.FLOW_VALUE: "parallelism=2"}}
_VALUE = {H.NOT_BEFORE: str(int(time.time()) + 86_400)}


@pytest.mark.parametrize(
    "option", [o for o in OPTIONS if o.name not in _ELSEWHERE], ids=lambda o: o.name
)
def test_every_option_is_in_the_contract(
    option: Option, recorder: Recorder, emulator: Emulator
) -> None:
    """A use with the option and one without are two distinct sets of options."""
    (rule,) = [r for r in RULES if r.option == option.name]
    given = {rule.header: _VALUE.get(rule.header, rule.example), **_WITH.get(rule.header, {})}
    with api(emulator) as http:
        if rule.schedule:  # a schedule's own option: the plain use is a schedule too
            path, plain = "/v2/schedules/https://shop.example.com/job", {H.CRON: "0 3 * * *"}
            given = {**plain, **given}
        else:
            path, plain = "/v2/publish/https://shop.example.com/job", {}
        for headers in (plain, given):
            r = http.post(path, headers=headers, content=b"{}")
            assert r.status_code in (200, 201), r.text
    (entry,) = build(recorder.usages())["entries"]
    assert len(entry["options"]) == 2, entry["options"]


def test_a_schedule_records_its_cron_and_not_each_run(
    recorder: Recorder, client: QStash, emulator: Emulator
) -> None:
    client.schedule.create_json(
        destination="https://shop.example.com/nightly",
        cron="0 3 * * *",
        body={"report": "daily"},
        retries=1,
    )
    emulator.run_until_idle(max_seconds=2 * 86_400)  # two runs, not recorded as publishes
    emulator.attempts.clear()
    (entry,) = build(recorder.usages())["entries"]
    assert (entry["kind"], entry["destination"]) == ("schedule", "https://shop.example.com/nightly")
    assert entry["options"] == [{"cron": "0 3 * * *", "retries": 1}]
    assert entry["exemplar"]["body"] == {"report": "daily"}


def test_a_workflow_records_its_payload_and_steps(
    recorder: Recorder, emulator: Emulator, client: QStash
) -> None:
    app = WorkflowApp(emulator)
    try:

        @app.route("/welcome")
        async def welcome(context: AsyncWorkflowContext[dict[str, str]]) -> None:
            name = context.request_payload["name"]

            async def greet() -> str:
                return f"hello {name}"

            await context.run("greet", greet)
            await context.sleep("a day", 86_400)
            await context.run("follow up", greet)

        client.message.publish_json(url=app.url + "/welcome", body={"name": "Ada"})
        emulator.run_until_idle()
    finally:
        app.stop()
    # The publish that starts the run (the Python SDK's way), then the run the SDK makes of it.
    start, run = build(recorder.usages())["entries"]
    assert (start["kind"], start["destination"]) == ("publish", "http://127.0.0.1:{port}/welcome")
    assert (run["kind"], run["destination"]) == ("workflow", "http://127.0.0.1:{port}/welcome")
    assert run["body"]["schema"]["properties"] == {"name": {"type": "string"}}
    assert run["steps"] == [["Run greet", "SleepFor a day", "Run follow up"]]
    # QStash's own headers, which the SDK forwards from the delivery it answers, are left out.
    assert run["headers"] == {"content-type": "application/json", "user-agent": "Upstash-QStash"}


def test_the_document_does_not_depend_on_the_order_uses_arrive() -> None:
    uses = [
        Usage(
            "publish",
            "POST",
            f"https://x.example.com/{n % 3}",
            f"https://x.example.com/{n % 3}",
            (("x-n", str(n % 2)),),
            orjson.dumps({"n": n, f"f{n % 4}": True}).decode(),
            True,
            orjson.dumps({"retries": n % 2}).decode(),
            test=f"t{n}",
        )
        for n in range(40)
    ]
    first = dumps(build(uses))
    for seed in range(5):
        random.Random(seed).shuffle(uses)
        assert dumps(build(uses)) == first
    assert loads(first) == orjson.loads(first)


def test_a_change_reads_field_by_field(recorder: Recorder, client: QStash) -> None:
    client.message.publish_json(url="https://x.example.com/a", body={"id": 1, "n": 2})
    committed = build(recorder.usages())
    old_use = recorder.usages()[0]
    new_use = Usage(
        old_use.kind,
        old_use.method,
        old_use.destination,
        old_use.url,
        (("content-type", "application/json"), ("x-new", "1")),
        '{"id":"1","extra":[1]}',
        True,
        '{"retries":5}',
        test="tests/test_x.py::test_y",
    )
    other = Usage(
        "publish",
        "GET",
        "https://y.example.com/",
        "https://y.example.com/",
        (),
        None,
        False,
        '{"retries":3}',
        test="tests/test_x.py::test_z",
    )
    current = build([new_use, other])
    assert compare(committed, current, [new_use, other]) == [
        "changed: POST https://x.example.com/a (publish), sent by tests/test_x.py::test_y",
        "  header 'x-new' added",
        "  body field 'n' removed",
        "  body field 'extra' added (array, in every body)",
        "  body field 'id': integer -> string",
        "  tests/test_x.py::test_y sent a body the contract refuses: 'n' is a required property",
        '  options no longer used: {"retries":3}',
        '  options new: {"retries":5}',
        "added: GET https://y.example.com/ (publish), sent by tests/test_x.py::test_z",
    ]
    assert compare(current, committed, [old_use]) == [
        "changed: POST https://x.example.com/a (publish)",
        "  header 'x-new' removed",
        "  body field 'extra' removed",
        "  body field 'n' added (integer, in every body)",
        "  body field 'id': string -> integer",
        "  a publish sent a body the contract refuses: 'extra' is a required property",
        '  options no longer used: {"retries":5}',
        '  options new: {"retries":3}',
        "removed: GET https://y.example.com/ (publish): no test of this run sent it",
    ]
    assert compare(committed, committed, []) == []


def test_the_dev_server_writes_its_contract_when_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "contract.json"
    proc = EmulatorProcess("--record-contract", str(path), "--quiet")
    try:
        answer = httpx.post(
            f"{proc.url}/v2/publish/http://127.0.0.1:9/hooks/1",
            headers={**proc.auth, "Content-Type": "application/json", "Upstash-Retries": "0"},
            content=b'{"a": 1}',
        )
        assert answer.status_code == 200, answer.text
        assert not path.exists()
    finally:
        out = proc.stop()
    assert f"qstash-emulator: contract written to {path} (1 entry)" in out
    (entry,) = load(path)["entries"]
    assert entry["destination"] == "http://127.0.0.1:{port}/hooks/{id}"
    assert entry["exemplar"] == {
        "url": "http://127.0.0.1:{port}/hooks/1",
        "headers": {"content-type": "application/json"},
        "body": {"a": 1},
    }


def test_replay_targets_rebase_filter_and_skip() -> None:
    def entry(kind: str, url: str, body: Any = None) -> dict[str, Any]:
        return {
            "kind": kind,
            "method": "PUT",
            "destination": url,
            "body": {"format": "json"} if body is not None else None,
            "exemplar": {"url": url, "headers": {"content-type": "a/b", "x-a": "1"}, "body": body},
        }

    document = {
        "qstash_contract": 1,
        "entries": [
            entry("publish", "https://a.example.com/x/1?q=2", {"n": 1}),
            entry("workflow", "https://a.example.com/flow"),
            entry("schedule", "nightly-group"),
            entry("publish", "http://127.0.0.1:{port}/local"),
            entry("publish", "https://b.example.com/y"),
        ],
    }
    found = targets(document, "http://127.0.0.1:3000/base/", "https://a.")
    assert [(t.url, t.skipped) for t in found] == [
        ("http://127.0.0.1:3000/base/x/1?q=2", None),
        ("https://a.example.com/flow", "a workflow run is started by its SDK, not replayed"),
    ]
    first = found[0]
    assert (first.method, first.body) == ("PUT", b'{"n":1}')
    assert first.publish_headers() == {
        "Upstash-Method": "PUT",
        "Upstash-Retries": "0",
        "Content-Type": "a/b",
        "Upstash-Forward-X-A": "1",
    }
    assert [t.skipped for t in targets(document)][2:] == [
        "sent to a URL group: replay its endpoints' entries",
        "recorded on a local port that changes every run: give the consumer's URL",
        None,
    ]
