"""The keyspace: every key the emulator writes is one its docstring describes."""

from __future__ import annotations

import inspect
import re
import typing

import httpx

from qstash_emulator import Emulator
from qstash_emulator.store import keyspace as _keyspace
from qstash_emulator.store.keyspace import Keyspace, QueuePart, RunPart

from .helpers import Destination, auth


def _families() -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """The documented key names, shared and per user, as patterns of the key after the prefix
    (``u:{user}:`` too for a user's)."""
    doc = _keyspace.__doc__ or ""
    shared_part, _, user_part = doc.partition("Each user's")
    name = re.compile(r"^    (\S+)\s+(string|hash|zset|set|list|stream)\b", re.M)

    def pattern(text: str, head: str) -> re.Pattern[str]:
        parts = re.split(r"\{[^}]+\}", text)
        return re.compile(head + ".+".join(re.escape(p) for p in parts) + "$")

    shared = [pattern(m[1], "") for m in name.finditer(shared_part)]
    per_user = [pattern(m[1], "u:[^:]+:") for m in name.finditer(user_part)]
    return shared, per_user


def _documented(key: str, prefix: str = "qe:") -> bool:
    shared, per_user = _families()
    rest = key.removeprefix(prefix)
    return key.startswith(prefix) and any(p.match(rest) for p in shared + per_user)


def _named() -> dict[str, str]:
    """Every key a ``Keyspace`` method names (for ``user_1``), by method."""
    keyspace = Keyspace()
    names = {
        name: value
        for name, value in vars(keyspace).items()
        if isinstance(value, str) and name != "prefix"
    }
    for name, method in inspect.getmembers(keyspace, inspect.ismethod):
        if name.startswith("_") or name in {
            "everything",
            "of_user",
            "all_queue_configs",
            "all_dlqs",
        }:
            continue
        if name == "user_of_queue_configs":
            continue
        params = list(inspect.signature(method).parameters)
        args = ["user_1", *(["x:y"] * (len(params) - 1))]
        if name == "queue":
            for part in typing.get_args(QueuePart):
                names[f"queue:{part}"] = method(*args[:-1], part)
            continue
        if name == "run":
            for part in typing.get_args(RunPart):
                names[f"run:{part}"] = method("user_1", "wfr_1@1", part)
            args = ["user_1", "wfr_1@1"]
        names[name] = method(*args)
    return names


def test_the_docstring_lists_the_families() -> None:
    assert _documented("qe:u:user_1:q:jobs:ready")
    assert not _documented("qe:u:user_1:unknown")
    assert not _documented("other:due")


def test_every_documented_family_is_a_key_the_keyspace_names() -> None:
    """The other way round from the test below: the docstring describes no key that is gone,
    and its parse finds every family (no count to edit when a family is added)."""
    shared, per_user = _families()
    assert shared and per_user
    keys = [k.removeprefix("qe:") for k in _named().values()]
    stale = [p.pattern for p in shared + per_user if not any(p.match(k) for k in keys)]
    assert stale == [], "families the _keyspace docstring describes but no method names"


def test_every_key_a_keyspace_names_is_documented() -> None:
    names = _named()
    assert len(names) > 20
    undocumented = sorted(f"{n}: {k}" for n, k in names.items() if not _documented(k))
    assert not undocumented, "keys the _keyspace docstring does not describe:\n" + "\n".join(
        undocumented
    )


def test_the_scan_patterns_match_what_they_name() -> None:
    keyspace = Keyspace("p:")
    assert re.fullmatch(keyspace.of_user("u1").replace("*", ".*"), keyspace.dlq("u1"))
    assert keyspace.user_of_queue_configs(keyspace.queues("user:x")) == "user:x"
    assert re.fullmatch(keyspace.all_queue_configs().replace("*", ".*"), keyspace.queues("u"))
    assert re.fullmatch(keyspace.all_dlqs().replace("*", ".*"), keyspace.dlq("u"))


def test_what_an_emulator_writes_is_documented(
    emulator: Emulator, destination: Destination
) -> None:
    """Messages, a delay, dedup, a dead letter, a queue, a schedule, a URL group, flow
    control, a signing-key rotation and a workflow run: no key outside the documented ones."""
    url, creds = emulator.url, auth(emulator)
    destination.script("/fails", (500, {}, b"no"))

    def post(path: str, **headers: str) -> httpx.Response:
        r = httpx.post(url + path, headers={**creds, **headers}, content=b"{}")
        assert r.status_code < 300, r.text
        return r

    post(f"/v2/publish/{destination.url}/later", **{"Upstash-Delay": "1h"})
    post(f"/v2/publish/{destination.url}/once", **{"Upstash-Deduplication-Id": "d1"})
    post(f"/v2/publish/{destination.url}/fails", **{"Upstash-Retries": "0"})
    post(
        f"/v2/publish/{destination.url}/flow",
        **{"Upstash-Flow-Control-Key": "k1", "Upstash-Flow-Control-Value": "parallelism=1"},
    )
    post(f"/v2/enqueue/jobs/{destination.url}/queued", **{"Upstash-Delay": "1h"})
    post(f"/v2/schedules/{destination.url}/nightly", **{"Upstash-Cron": "0 0 * * *"})
    r = httpx.post(
        f"{url}/v2/topics/g1/endpoints",
        headers=creds,
        json={"endpoints": [{"url": destination.url + "/g"}]},
    )
    assert r.status_code == 200, r.text
    post("/v2/keys/rotate")
    post(
        f"/v2/publish/{destination.url}/workflow",
        **{
            "Upstash-Workflow-RunId": "wfr_keys",
            "Upstash-Workflow-Init": "true",
            "Upstash-Workflow-Url": destination.url + "/workflow",
        },
    )
    destination.wait(1, "/fails")
    emulator.wait_idle()

    # Internal: the keys in the store have no public surface; this checks the keyspace rule.
    store = emulator.runtime.store
    keys = emulator.call(_all_keys(store))
    assert any(":run:" in k for k in keys), keys
    assert any(k.endswith(":dlq") for k in keys), keys
    undocumented = sorted(k for k in keys if not _documented(k, store.keyspace.prefix))
    assert not undocumented, "keys the _keyspace docstring does not describe:\n" + "\n".join(
        undocumented
    )


async def _all_keys(store: object) -> list[str]:
    redis = store.redis  # type: ignore[attr-defined]
    return [k.decode() async for k in redis.scan_iter(match="*", count=1_000)]
