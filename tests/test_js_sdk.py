"""The official JS SDK (@upstash/qstash) against the emulator: tests/js/contract.mjs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qstash_emulator import Emulator

JS = Path(__file__).parent / "js"

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "@upstash" / "qstash").is_dir(),
        reason="tests/js/node_modules is missing: run `npm install` in tests/js",
    ),
]


def _run_contract(emulator: Emulator) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSTASH_", "UPSTASH_"))}
    env.update(emulator.env(), UPSTASH_DISABLE_TELEMETRY="1")
    proc = subprocess.run(
        ["node", "contract.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=90
    )
    assert proc.stdout, f"contract.mjs printed nothing (exit {proc.returncode}): {proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["errors"] == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    return result


def test_js_client_publishes_enqueues_batches_and_verifies(emulator: Emulator) -> None:
    out = _run_contract(emulator)
    dest, steps = out["destination"], out["steps"]

    assert steps["publishJSON"] == {
        "messageId": steps["publishJSON"]["messageId"],
        "url": dest + "/publish",
    }
    assert steps["enqueueJSON"]["url"] == dest + "/enqueue"
    queue = steps["queue.get"]
    assert set(queue) == {"name", "parallelism", "createdAt", "updatedAt", "lag", "paused"}
    assert (queue["name"], queue["parallelism"], queue["paused"]) == ("js-queue", 2, False)
    assert [q["name"] for q in steps["queue.list"]] == ["js-queue"]
    assert [b["url"] for b in steps["batchJSON"]] == [dest + "/batch-url", dest + "/batch-queue"]

    group = steps["urlGroups.get"]
    assert group == {
        "name": "js-group",
        "createdAt": group["createdAt"],
        "updatedAt": group["updatedAt"],
        "endpoints": [{"url": dest + "/group-1", "name": "first"}, {"url": dest + "/group-2"}],
    }
    assert steps["urlGroups.list"] == [group]
    fanned = steps["publishJSON.urlGroup"]
    assert [f["url"] for f in fanned] == [dest + "/group-1", dest + "/group-2"]
    assert steps["urlGroups.afterRemove"]["endpoints"] == [{"url": dest + "/group-2"}]
    assert steps["queue.listAfterDelete"] == []

    schedule_id = steps["schedules.create"]["scheduleId"]
    assert steps["schedules.get"]["scheduleId"] == schedule_id
    assert steps["schedules.get"]["cron"] == "*/5 * * * *"
    assert [s["scheduleId"] for s in steps["schedules.list"]] == [schedule_id]

    deliveries = {d["path"]: d for d in out["deliveries"]}
    assert sorted(deliveries) == [
        "/batch-queue",
        "/batch-url",
        "/enqueue",
        "/group-1",
        "/group-2",
        "/publish",
    ]
    assert all(d["verified"] and d["tamperedRejected"] for d in deliveries.values())
    assert deliveries["/publish"]["messageId"] == steps["publishJSON"]["messageId"]
    assert deliveries["/publish"]["body"] == '{"hello":"js"}'
    assert deliveries["/publish"]["forwarded"] == "js"
    assert deliveries["/enqueue"]["messageId"] == steps["enqueueJSON"]["messageId"]
    assert deliveries["/batch-queue"]["messageId"] == steps["batchJSON"][1]["messageId"]
    assert deliveries["/group-1"]["messageId"] == fanned[0]["messageId"]
    assert deliveries["/group-1"]["topicName"] == deliveries["/group-2"]["topicName"] == "js-group"
