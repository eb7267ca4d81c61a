"""Bad input on every endpoint: a 4xx ``{"error": "..."}`` naming the field, never a 500.

One table, one row per kind of mistake; each row also checks that the server still serves.
The rows run against one emulator with a 1 KiB message size, whose deliveries are answered
in process, so nothing here leaves the machine.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.delivery.transport import Response as Reply

from .helpers import Answering, api, api_routes, error_of, wait_until

P = "/v2/publish/http://127.0.0.1:9/x"
E = "/v2/enqueue/q1/http://127.0.0.1:9/x"
S = "/v2/schedules/http://127.0.0.1:9/x"
CRON = {"Upstash-Cron": "*/5 * * * *"}
RUN, INIT = "Upstash-Workflow-RunId", "Upstash-Workflow-Init"
LIMIT = 1024


def row(
    name: str,
    method: str,
    path: str,
    status: int,
    field: str,
    **request: Any,
) -> Any:
    return pytest.param(method, path, request, status, field, id=name)


ROWS = [
    # Destinations --------------------------------------------------------------------------
    row("dest-no-scheme", "POST", "/v2/publish/example.com/hook", 404, "example.com/hook"),
    row("dest-ftp", "POST", "/v2/publish/ftp://x/y", 404, "ftp://x/y"),
    row("dest-empty", "POST", "/v2/publish/", 400, "destination"),
    row("dest-no-host", "POST", "/v2/publish/http://", 400, "destination"),
    row("dest-bad-port", "POST", "/v2/publish/http://127.0.0.1:99999/x", 400, "destination"),
    row("dest-bad-ipv6", "POST", "/v2/publish/http://[::1/x", 400, "destination"),
    # Durations -----------------------------------------------------------------------------
    row("delay-word", "POST", P, 400, "Upstash-Delay", headers={"Upstash-Delay": "soon"}),
    row("delay-negative", "POST", P, 400, "Upstash-Delay", headers={"Upstash-Delay": "-5s"}),
    row("delay-fraction", "POST", P, 400, "Upstash-Delay", headers={"Upstash-Delay": "1.5h"}),
    row(
        "delay-huge",
        "POST",
        P,
        400,
        "Upstash-Delay",
        headers={"Upstash-Delay": "99999999999999999999s"},
    ),
    row("delay-in-query", "POST", P + "?upstash-delay=soon", 400, "Upstash-Delay"),
    row(
        "not-before-negative",
        "POST",
        P,
        400,
        "Upstash-Not-Before",
        headers={"Upstash-Not-Before": "-1"},
    ),
    row("timeout-zero", "POST", P, 400, "Upstash-Timeout", headers={"Upstash-Timeout": "0s"}),
    row("timeout-huge", "POST", P, 400, "Upstash-Timeout", headers={"Upstash-Timeout": "999d"}),
    row(
        "callback-delay-alone",
        "POST",
        P,
        400,
        "Upstash-Callback-Delay",
        headers={"Upstash-Callback-Delay": "soon"},
    ),
    row(
        "failure-callback-timeout",
        "POST",
        P,
        400,
        "Upstash-Failure-Callback-Timeout",
        headers={
            "Upstash-Failure-Callback": "http://127.0.0.1:9/f",
            "Upstash-Failure-Callback-Timeout": "-1s",
        },
    ),
    # Retries -------------------------------------------------------------------------------
    row("retries-negative", "POST", P, 400, "Upstash-Retries", headers={"Upstash-Retries": "-1"}),
    row("retries-over-max", "POST", P, 400, "Upstash-Retries", headers={"Upstash-Retries": "21"}),
    row("retries-float", "POST", P, 400, "Upstash-Retries", headers={"Upstash-Retries": "3.5"}),
    row(
        "callback-retries",
        "POST",
        P,
        400,
        "Upstash-Callback-Retries",
        headers={"Upstash-Callback": "http://127.0.0.1:9/c", "Upstash-Callback-Retries": "101"},
    ),
    # Retry-delay expressions that try to run code or cannot evaluate -----------------------
    *[
        row(
            f"retry-delay-{i}",
            "POST",
            P,
            400,
            "Upstash-Retry-Delay",
            headers={"Upstash-Retry-Delay": expr},
        )
        for i, expr in enumerate(
            [
                "__import__('os').system('true')",
                "open('/etc/passwd').read()",
                "(lambda: 1)()",
                "retried.__class__",
                "[1][0]",
                "'1000'",
                "1000 / 0",
                "1000 / retried",
                "sqrt(-1)",
                "retried ** 2",
                "exp(1000)",
                "x + 1",
                "pow(2)",
                "(" * 300 + "1" + ")" * 300,
                "-" * 900 + "1",
                "1" * 1_001,
                "",
            ]
        )
    ],
    row(
        "callback-retry-delay",
        "POST",
        P,
        400,
        "Upstash-Callback-Retry-Delay",
        headers={"Upstash-Callback": "http://127.0.0.1:9/c", "Upstash-Callback-Retry-Delay": "1/0"},
    ),
    # Other publish headers ------------------------------------------------------------------
    row("method", "POST", P, 400, "Upstash-Method", headers={"Upstash-Method": "FETCH"}),
    row(
        "callback-method",
        "POST",
        P,
        400,
        "Upstash-Callback-Method",
        headers={"Upstash-Callback": "http://127.0.0.1:9/c", "Upstash-Callback-Method": "X"},
    ),
    row("callback-url", "POST", P, 400, "Upstash-Callback", headers={"Upstash-Callback": "nope"}),
    row(
        "failure-callback-url",
        "POST",
        P,
        400,
        "Upstash-Failure-Callback",
        headers={"Upstash-Failure-Callback": "ftp://x"},
    ),
    row(
        "dedup-colon",
        "POST",
        P,
        400,
        "Upstash-Deduplication-Id",
        headers={"Upstash-Deduplication-Id": "a:b"},
    ),
    row(
        "dedup-blank",
        "POST",
        P,
        400,
        "Upstash-Deduplication-Id",
        headers={"Upstash-Deduplication-Id": ""},
    ),
    row(
        "content-dedup",
        "POST",
        P,
        400,
        "Upstash-Content-Based-Deduplication",
        headers={"Upstash-Content-Based-Deduplication": "maybe"},
    ),
    row(
        "header-forward",
        "POST",
        P,
        400,
        "Upstash-Header-Forward",
        headers={"Upstash-Header-Forward": "maybe"},
    ),
    row("label-space", "POST", P, 400, "Upstash-Label", headers={"Upstash-Label": "bad label"}),
    row(
        "label-unicode",
        "POST",
        P,
        400,
        "Upstash-Label",
        headers=[(b"Upstash-Label", "grün".encode("latin-1"))],
    ),
    row("redact", "POST", P, 400, "Upstash-Redact-Fields", headers={"Upstash-Redact-Fields": "pw"}),
    row(
        "flow-key-alone",
        "POST",
        P,
        400,
        "Upstash-Flow-Control-Value",
        headers={"Upstash-Flow-Control-Key": "k"},
    ),
    row(
        "flow-value-alone",
        "POST",
        P,
        400,
        "Upstash-Flow-Control-Key",
        headers={"Upstash-Flow-Control-Value": "parallelism=1"},
    ),
    *[
        row(
            f"flow-value-{i}",
            "POST",
            P,
            400,
            "Upstash-Flow-Control-Value",
            headers={"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value},
        )
        for i, value in enumerate(["speed=3", "parallelism=0", "rate=abc", "rate=1, period=0s"])
    ],
    # Duplicate and huge headers, bodies ----------------------------------------------------
    row(
        "duplicate-delay",
        "POST",
        P,
        400,
        "Upstash-Delay",
        headers=[("Upstash-Delay", "1s"), ("Upstash-Delay", "2s")],
    ),
    row(
        "duplicate-retries",
        "POST",
        P,
        400,
        "Upstash-Retries",
        headers=[("Upstash-Retries", "1"), ("Upstash-Retries", "2")],
    ),
    row("body-too-big", "POST", P, 400, "body", content=b"x" * (LIMIT + 1)),
    row(
        "headers-too-big",
        "POST",
        P,
        400,
        "headers",
        headers={"Upstash-Forward-Big": "h" * LIMIT},
    ),
    row(
        "header-many",
        "POST",
        P,
        400,
        "headers",
        headers=[(f"Upstash-Forward-H{i}", "v" * 20) for i in range(100)],
    ),
    # Enqueue -------------------------------------------------------------------------------
    row("enqueue-queue-space", "POST", "/v2/enqueue/bad%20q/http://127.0.0.1:9/x", 400, "queue"),
    row("enqueue-queue-unicode", "POST", "/v2/enqueue/%E9%98%9F/http://127.0.0.1:9/x", 400, "队"),
    row("enqueue-delay", "POST", E, 400, "Upstash-Delay", headers={"Upstash-Delay": "-1s"}),
    row("enqueue-body-too-big", "POST", E, 400, "body", content=b"x" * (LIMIT + 1)),
    row("enqueue-no-scheme", "POST", "/v2/enqueue/q1/example.com", 404, "example.com"),
    # Batch (the whole call; entry errors go in their slot, see below) ---------------------
    row("batch-object", "POST", "/v2/batch", 400, "body", json={}),
    row("batch-truncated", "POST", "/v2/batch", 400, "body", content=b"["),
    row("batch-empty", "POST", "/v2/batch", 400, "body", content=b""),
    row("batch-not-utf8", "POST", "/v2/batch", 400, "body", content=b"\xff\xfe[]"),
    # Messages ------------------------------------------------------------------------------
    row("message-unknown", "GET", "/v2/messages/msg_nope", 404, "msg_nope"),
    row("message-cancel-unknown", "DELETE", "/v2/messages/msg_nope", 404, "msg_nope"),
    row("cancel-body-array", "DELETE", "/v2/messages", 400, "body", content=b"[1,2]"),
    row(
        "cancel-ids-numbers",
        "DELETE",
        "/v2/messages",
        400,
        "messageIds",
        json={"messageIds": [1]},
    ),
    row("cancel-count", "DELETE", "/v2/messages?count=0", 400, "count"),
    row("cancel-state", "DELETE", "/v2/messages?state=NOPE", 400, "state"),
    row(
        "cancel-body-url",
        "DELETE",
        "/v2/messages",
        400,
        "url",
        json={"url": ["http://a", 1]},
    ),
    # Logs ----------------------------------------------------------------------------------
    row("logs-count-zero", "GET", "/v2/logs?count=0", 400, "count"),
    row("logs-count-word", "GET", "/v2/logs?count=abc", 400, "count"),
    row("logs-count-high", "GET", "/v2/events?count=1001", 400, "count"),
    row("logs-order", "GET", "/v2/logs?order=sideways", 400, "order"),
    row("logs-from", "GET", "/v2/logs?fromDate=yesterday", 400, "fromDate"),
    row("logs-to", "GET", "/v2/events?toDate=1.5", 400, "toDate"),
    row("logs-state", "GET", "/v2/logs?state=NOPE", 400, "state"),
    row("logs-status", "GET", "/v2/logs?responseStatus=abc", 400, "responseStatus"),
    row("logs-cursor", "GET", "/v2/logs?cursor=garbage", 400, "cursor"),
    row("logs-cursor-huge", "GET", "/v2/events?cursor=" + "9" * 30, 400, "cursor"),
    # DLQ -----------------------------------------------------------------------------------
    row("dlq-count", "GET", "/v2/dlq?count=101", 400, "count"),
    row("dlq-cursor", "GET", "/v2/dlq?cursor=1-x", 400, "cursor"),
    row("dlq-host", "GET", "/v2/dlq?host=a", 400, "host"),
    row("dlq-unknown", "GET", "/v2/dlq/1-0", 404, "1-0"),
    row("dlq-malformed-id", "GET", "/v2/dlq/not-an-id", 404, "not-an-id"),
    row("dlq-delete-unknown", "DELETE", "/v2/dlq/not-an-id", 404, "not-an-id"),
    row("dlq-delete-body", "DELETE", "/v2/dlq", 400, "body", content=b'"x"'),
    row("dlq-delete-ids", "DELETE", "/v2/dlq", 400, "dlqIds", json={"dlqIds": "x"}),
    row("dlq-retry-unknown", "POST", "/v2/dlq/retry/1-0", 404, "1-0"),
    row("dlq-retry-many-unknown", "POST", "/v2/dlq/retry?dlqIds=9-9", 404, "9-9"),
    # Schedules -----------------------------------------------------------------------------
    row("cron-missing", "POST", S, 400, "Upstash-Cron"),
    *[
        row(
            f"cron-{i}",
            "POST",
            S,
            400,
            "Upstash-Cron",
            headers={"Upstash-Cron": cron},
        )
        for i, cron in enumerate(
            [
                "* * *",
                "* * * * * * * *",
                "61 * * * *",
                "* 25 * * *",
                "*/0 * * * *",
                "0 0 31 2 *",
                "@reboot",
                "CRON_TZ=Mars/Base * * * * *",
                "every minute please",
                "; rm -rf / * * * *",
            ]
        )
    ],
    row(
        "schedule-id-space",
        "POST",
        S,
        400,
        "Upstash-Schedule-Id",
        headers={**CRON, "Upstash-Schedule-Id": "bad id"},
    ),
    row(
        "schedule-id-unicode",
        "POST",
        S,
        400,
        "Upstash-Schedule-Id",
        headers=[(b"Upstash-Cron", b"* * * * *"), (b"Upstash-Schedule-Id", "ñ".encode("latin-1"))],
    ),
    row(
        "schedule-queue",
        "POST",
        S,
        400,
        "Upstash-Queue-Name",
        headers={**CRON, "Upstash-Queue-Name": "a/b"},
    ),
    row(
        "schedule-delay",
        "POST",
        S,
        400,
        "Upstash-Delay",
        headers={**CRON, "Upstash-Delay": "forever"},
    ),
    row("schedule-body", "POST", S, 400, "body", headers=CRON, content=b"x" * (LIMIT + 1)),
    row("schedule-unknown", "GET", "/v2/schedules/nope", 404, "nope"),
    row("schedule-delete-unknown", "DELETE", "/v2/schedules/nope", 404, "nope"),
    row("schedule-pause-unknown", "PATCH", "/v2/schedules/nope/pause", 404, "nope"),
    row("schedule-pause-unknown-post", "POST", "/v2/schedules/nope/pause", 404, "nope"),
    row("schedule-resume-unknown", "POST", "/v2/schedules/nope/resume", 404, "nope"),
    row("schedule-resume-unknown-patch", "PATCH", "/v2/schedules/nope/resume", 404, "nope"),
    # Queues --------------------------------------------------------------------------------
    row("queue-not-json", "POST", "/v2/queues", 400, "body", content=b"not json"),
    row("queue-not-utf8", "POST", "/v2/queues", 400, "body", content=b"\xff\xfe"),
    row("queue-array", "POST", "/v2/queues", 400, "body", json=[]),
    row("queue-no-name", "POST", "/v2/queues", 400, "queueName", json={"parallelism": 1}),
    row("queue-unicode", "POST", "/v2/queues", 400, "queueName", json={"queueName": "队列"}),
    row("queue-long", "POST", "/v2/queues", 400, "queueName", json={"queueName": "q" * 300}),
    *[
        row(
            f"queue-parallelism-{i}",
            "POST",
            "/v2/queues",
            400,
            "parallelism",
            json={"queueName": "q1", "parallelism": value},
        )
        for i, value in enumerate([0, -1, "2", True, 1.5])
    ],
    row(
        "queue-paused",
        "POST",
        "/v2/queues",
        400,
        "paused",
        json={"queueName": "q1", "paused": "yes"},
    ),
    row("queue-unknown", "GET", "/v2/queues/nope", 404, "nope"),
    row("queue-pause-unknown", "POST", "/v2/queues/nope/pause", 404, "nope"),
    row("queue-resume-unknown", "POST", "/v2/queues/nope/resume", 404, "nope"),
    # URL groups ----------------------------------------------------------------------------
    row("group-endpoints-object", "POST", "/v2/topics/g/endpoints", 400, "body", json={}),
    row("group-endpoints-array", "POST", "/v2/topics/g/endpoints", 400, "body", json=[]),
    row(
        "group-endpoints-empty",
        "POST",
        "/v2/topics/g/endpoints",
        400,
        "endpoints",
        json={"endpoints": []},
    ),
    row(
        "group-endpoint-url",
        "POST",
        "/v2/topics/g/endpoints",
        400,
        "endpoints[0].url",
        json={"endpoints": [{"url": "nope"}]},
    ),
    row(
        "group-endpoint-url-type",
        "POST",
        "/v2/topics/g/endpoints",
        400,
        "endpoints[0].url",
        json={"endpoints": [{"url": 1}]},
    ),
    row(
        "group-name-space",
        "POST",
        "/v2/topics/bad%20g/endpoints",
        400,
        "bad g",
        json={"endpoints": [{"url": "http://127.0.0.1:9/a"}]},
    ),
    row(
        "group-name-unicode",
        "POST",
        "/v2/topics/gr%C3%BCn/endpoints",
        400,
        "grün",
        json={"endpoints": [{"url": "http://127.0.0.1:9/a"}]},
    ),
    row("group-headers-array", "PATCH", "/v2/topics/g", 400, "body", json=[1]),
    row("group-unknown", "GET", "/v2/topics/nope", 404, "nope"),
    row(
        "group-headers-unknown",
        "PATCH",
        "/v2/topics/nope",
        404,
        "nope",
        json={"headers": {"X": "y"}},
    ),
    row(
        "group-remove-unknown",
        "DELETE",
        "/v2/topics/nope/endpoints",
        404,
        "nope",
        json={"endpoints": [{"url": "http://127.0.0.1:9/a"}]},
    ),
    # Flow control --------------------------------------------------------------------------
    row("flow-unknown", "GET", "/v2/flowControl/nope", 404, "nope"),
    row("flow-pin-zero", "POST", "/v2/flowControl/k/pin?parallelism=0", 400, "parallelism"),
    row("flow-pin-rate", "POST", "/v2/flowControl/k/pin?rate=abc", 400, "rate"),
    row("flow-pin-period", "POST", "/v2/flowControl/k/pin?period=0", 400, "period"),
    row("flow-unpin", "POST", "/v2/flowControl/k/unpin?parallelism=maybe", 400, "parallelism"),
    # Upstash Workflow ----------------------------------------------------------------------
    row("run-id-slash", "POST", P, 400, "Upstash-Workflow-RunId", headers={RUN: "a/b"}),
    row("run-init-alone", "POST", P, 400, "Upstash-Workflow-RunId", headers={INIT: "true"}),
    row("run-init", "POST", P, 400, "Upstash-Workflow-Init", headers={RUN: "r", INIT: "maybe"}),
    row(
        "run-call-type",
        "POST",
        P,
        400,
        "Upstash-Workflow-CallType",
        headers={RUN: "r", "Upstash-Workflow-CallType": "sideways"},
    ),
    row(
        "run-url",
        "POST",
        P,
        400,
        "Upstash-Workflow-Url",
        headers={RUN: "r", "Upstash-Workflow-Url": "ftp://x"},
    ),
    row(
        "callback-run-init",
        "POST",
        P,
        400,
        "Upstash-Callback-Workflow-Init",
        headers={"Upstash-Callback-Workflow-RunId": "r", "Upstash-Callback-Workflow-Init": "x"},
    ),
    row("run-unknown", "POST", P, 400, "wfr_none", headers={RUN: "wfr_none", INIT: "false"}),
    row(
        "run-invoke-body",
        "POST",
        P,
        400,
        "body",
        headers={RUN: "r", INIT: "true", "Upstash-Workflow-Invoke": "true"},
        content=b"not an envelope",
    ),
    row("run-end-cancel", "DELETE", "/v2/workflows/runs/r?cancel=maybe", 400, "cancel"),
    row("run-end-unknown", "DELETE", "/v2/workflows/runs/wfr_none", 404, "wfr_none"),
    row("run-get-unknown", "GET", "/v2/workflows/runs/wfr_none", 404, "wfr_none"),
    row("runs-cancel-count", "DELETE", "/v2/workflows/runs?count=0", 400, "count"),
    row("wf-logs-count", "GET", "/v2/workflows/logs?count=x", 400, "count"),
    row("wf-logs-state", "GET", "/v2/workflows/logs?state=NOPE", 400, "state"),
    row("wf-logs-runs", "GET", "/v2/workflows/logs?workflowRuns=nope", 400, "workflowRuns"),
    row("wf-logs-cursor", "GET", "/v2/workflows/logs?cursor=x@1", 400, "cursor"),
    row("wf-events-group", "GET", "/v2/workflows/events?groupBy=x", 400, "groupBy"),
    row("wf-events-cursor", "GET", "/v2/workflows/events?cursor=x", 400, "cursor"),
    row("wait-body", "POST", "/v2/wait/e", 400, "body", json=[1]),
    row("wait-url", "POST", "/v2/wait/e", 400, "body.url", json={"step": {"stepName": "s"}}),
    row(
        "wait-timeout",
        "POST",
        "/v2/wait/e",
        400,
        "body.timeout",
        json={"url": "http://127.0.0.1:9/x", "timeout": "soon", "step": {"stepName": "s"}},
    ),
    row(
        "wait-step",
        "POST",
        "/v2/wait/e",
        400,
        "body.step",
        json={"url": "http://127.0.0.1:9/x", "step": 3},
    ),
    row(
        "wait-no-run",
        "POST",
        "/v2/wait/e",
        400,
        "Upstash-Workflow-RunId",
        json={"url": "http://127.0.0.1:9/x", "step": {"stepName": "s"}},
    ),
    row("notify-run-unknown", "POST", "/v2/notify/wfr_none/e", 404, "wfr_none"),
    *(
        row(f"hook-user-{m}", m, "/v2/workflows/hooks/nobody/r/e", 404, "nobody")
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ),
    row(
        "run-retries-412",
        "POST",
        P,
        412,
        "Upstash-Retries",
        headers={RUN: "r", INIT: "true", "Upstash-Retries": "1000000"},
    ),
    row("trigger-group", "POST", "/v2/trigger/no-such-group", 400, "no-such-group"),
    row(
        "trigger-retries",
        "POST",
        "/v2/trigger/http://127.0.0.1:9/x",
        412,
        "Upstash-Retries",
        headers={"Upstash-Retries": "99"},
    ),
    row("batch-trigger-body", "POST", "/v2/batch/trigger", 400, "body", json={}),
    row("dlq-source", "GET", "/v2/dlq?source=x", 400, "source"),
    row("wf-dlq-count", "GET", "/v2/workflows/dlq?count=0", 400, "count"),
    row(
        "wf-dlq-state",
        "DELETE",
        "/v2/workflows/dlq?failureFunctionState=x",
        400,
        "failureFunctionState",
    ),
    row("wf-dlq-get", "GET", "/v2/workflows/dlq/1-0", 404, "1-0"),
    row("wf-dlq-delete", "DELETE", "/v2/workflows/dlq/1-0", 404, "1-0"),
    row("wf-dlq-resume", "POST", "/v2/workflows/dlq/resume?dlqIds=1-0", 404, "1-0"),
    row("wf-dlq-resume-one", "POST", "/v2/workflows/dlq/resume/1-0", 404, "1-0"),
    row("wf-dlq-restart", "POST", "/v2/workflows/dlq/restart?dlqIds=1-0", 404, "1-0"),
    row("wf-dlq-restart-one", "POST", "/v2/workflows/dlq/restart/1-0", 404, "1-0"),
    row("wf-dlq-callback", "POST", "/v2/workflows/dlq/callback/1-0", 404, "1-0"),
    row("wf-dlq-callback-stop", "DELETE", "/v2/workflows/dlq/callback/1-0", 404, "1-0"),
    row(
        "wf-dlq-resume-retries",
        "POST",
        "/v2/workflows/dlq/resume/1-0",
        400,
        "Upstash-Retries",
        headers={"Upstash-Retries": "x"},
    ),
    # The emulator's own endpoints ----------------------------------------------------------
    row("inspect-state", "GET", "/_emulator/messages?state=bogus", 400, "state"),
    row("inspect-times-count", "GET", "/_emulator/schedules/x/times?count=0", 400, "count"),
    row("inspect-times-unknown", "GET", "/_emulator/schedules/nope/times", 404, "nope"),
    row("run-now-unknown", "POST", "/_emulator/run-now/nope", 404, "nope"),
    row("fault-kind", "POST", "/_emulator/faults", 400, "kind", json={"kind": "nope"}),
    row("fault-array", "POST", "/_emulator/faults", 400, "body", json=[1]),
    row("fault-extra", "POST", "/_emulator/faults", 400, "colour", json={"colour": "red"}),
    row("fault-status", "POST", "/_emulator/faults", 400, "status", json={"status": "x"}),
    row("fault-times", "POST", "/_emulator/faults", 400, "times", json={"times": "many"}),
    row("fault-headers", "POST", "/_emulator/faults", 400, "headers", json={"headers": [1]}),
    row("fault-delay", "POST", "/_emulator/faults", 400, "delayMs", json={"delayMs": True}),
    # Routing -------------------------------------------------------------------------------
    row("no-such-endpoint", "GET", "/v2/nope", 404, "/v2/nope"),
    row("wrong-method", "PUT", "/v2/keys", 405, "PUT"),
]


@pytest.fixture(scope="module")
def small() -> Iterator[Emulator]:
    with Emulator(max_message_size=LIMIT) as emu:
        emu.add_responder(
            Answering(
                lambda method, url: (
                    Reply(500, [], b"no") if url.endswith("/fail") else Reply(200, [], b"ok")
                )
            )
        )
        yield emu


@pytest.fixture(scope="module")
def http(small: Emulator) -> Iterator[httpx.Client]:
    with api(small) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "request_", "status", "field"), ROWS)
def test_bad_input_is_a_4xx_naming_the_field(
    http: httpx.Client,
    method: str,
    path: str,
    request_: dict[str, Any],
    status: int,
    field: str,
) -> None:
    r = http.request(method, path, **request_)
    assert r.status_code == status, r.text
    assert field in error_of(r)
    assert http.get("/v2/keys").status_code == 200


def test_table_covers_every_route() -> None:
    """Each route (but the read-only lists, which take no input) has a bad-input row."""

    from qstash_emulator.api._declare import OperationRoute

    tried = {(p.values[0], p.values[1].split("?")[0]) for p in ROWS}
    untried = []
    for route in api_routes():
        assert isinstance(route, OperationRoute)
        method = route.operation.method
        key = (method, re.sub(r":\w+\}", "}", route.path))
        hit = any(m == method and _matches(route, p) for m, p in tried)
        if not hit and key not in _INPUTLESS:
            untried.append((method, key[1].replace("{", "").replace("}", "")))
    assert untried == []


def _matches(route: Any, path: str) -> bool:
    from starlette.routing import Match

    match, _ = route.matches({"type": "http", "path": path, "method": "GET"})
    return bool(match != Match.NONE)


# Routes whose only input is the token (tested in test_security.py).
_INPUTLESS = {
    ("GET", "/_emulator/health"),
    ("POST", "/v2/notify/{eventId}"),
    ("GET", "/v2/waiters/{eventId}"),
    ("GET", "/v2/keys"),
    ("POST", "/v2/keys/rotate"),
    ("GET", "/v2/topics"),
    ("DELETE", "/v2/topics/{name}"),
    ("GET", "/v2/queues"),
    ("DELETE", "/v2/queues/{name}"),
    ("GET", "/v2/schedules"),
    ("GET", "/v2/Schedules/{scheduleId}"),
    ("POST", "/v2/Schedules/{destination}"),
    ("GET", "/v2/flowControl"),
    ("GET", "/v2/globalParallelism"),
    ("POST", "/v2/flowControl/{key}/pause"),
    ("POST", "/v2/flowControl/{key}/resume"),
    ("POST", "/v2/flowControl/{key}/resetRate"),
    ("POST", "/v2/flowControl/{key}/reset"),
    ("GET", "/_emulator/dlq"),
    ("GET", "/_emulator/attempts"),
    ("GET", "/_emulator/clock"),
    ("GET", "/_emulator/faults"),
    ("DELETE", "/_emulator/faults"),
    ("GET", "/v2/openapi.json"),
}


def test_binary_and_unicode_bodies_are_kept_exactly(http: httpx.Client) -> None:
    binary = bytes(range(256))[:200] + b"\xff\xfe"
    r = http.post(P, headers={"Upstash-Delay": "1h"}, content=binary)
    got = http.get(f"/v2/messages/{r.json()['messageId']}").json()
    assert "body" not in got and base64.b64decode(got["bodyBase64"]) == binary
    text = "héllo wörld ✓ 你好"
    r = http.post(P, headers={"Upstash-Delay": "1h"}, content=text.encode())
    assert http.get(f"/v2/messages/{r.json()['messageId']}").json()["body"] == text


def test_a_header_repeated_with_one_value_is_not_a_conflict(http: httpx.Client) -> None:
    r = http.post(P, headers=[("Upstash-Delay", "1h"), ("Upstash-Delay", "1h")])
    assert r.status_code == 200, r.text


def test_batch_entry_errors_stay_in_their_slot(http: httpx.Client) -> None:
    entries: list[Any] = [
        {"destination": 1},
        {"destination": "http://127.0.0.1:9/b", "headers": {"Upstash-Delay": "soon"}},
        {"destination": "http://127.0.0.1:9/b", "body": "x" * (LIMIT + 1)},
        {"destination": "http://127.0.0.1:9/b", "queue": "bad q"},
        "not an object",
        {"destination": "http://127.0.0.1:9/b", "headers": {"Upstash-Delay": "1h"}},
    ]
    r = http.post("/v2/batch", json=entries)
    assert r.status_code == 200, r.text
    slots = r.json()
    assert [next(iter(s)) for s in slots] == ["error"] * 5 + ["messageId"]
    fields = [
        "batch[0].destination",
        "Upstash-Delay",
        "batch[2].body",
        "batch[3].queue",
        "batch[4]",
    ]
    for slot, field in zip(slots, fields, strict=False):
        assert field in slot["error"], slot


@pytest.mark.parametrize(
    ("expression", "retries"),
    [("1e300", 1), ("pow(10, 20)", 1), ("1000 / (retried - 1)", 2)],
)
def test_retry_delay_that_overflows_or_fails_later_never_wedges_the_message(
    http: httpx.Client, expression: str, retries: int
) -> None:
    """Accepted at publish (it evaluates for retried=0), so its retries must still be planned:
    an endless delay is capped, one that fails later falls back to the default backoff."""
    r = http.post(
        P.replace("/x", "/fail"),
        headers={"Upstash-Retry-Delay": expression, "Upstash-Retries": "3"},
    )
    assert r.status_code == 200, r.text
    message_id = r.json()["messageId"]
    rows: list[dict[str, Any]] = []

    def planned() -> bool:
        query = {"messageId": message_id, "state": "RETRY"}
        rows[:] = http.get("/v2/logs", params=query).json()["logs"]
        return len(rows) >= retries

    wait_until(planned, timeout=10, what=f"{retries} retries to be planned")
    latest = rows[0]
    delay = latest["nextDeliveryTime"] - latest["time"]
    assert 1_000 <= delay <= 100 * 365 * 86_400_000
    assert http.delete(f"/v2/messages/{message_id}").json() == {"cancelled": 1}


def _every_operation() -> list[tuple[str, str]]:
    from qstash_emulator.api._declare import OperationRoute

    ops = []
    for route in api_routes():
        assert isinstance(route, OperationRoute)
        # A publish's query is its destination's own, a webhook's its caller's.
        if route.operation.accepted_query is not None:
            ops.append((route.operation.method, re.sub(r":\w+\}", "}", route.path)))
    return ops


@pytest.mark.parametrize(("method", "template"), _every_operation())
def test_unknown_query_parameter_is_400_naming_it(
    http: httpx.Client, method: str, template: str
) -> None:
    keys = http.get("/v2/keys").json()
    path = template.replace("{dlqId}", "1-0").replace("{key}", "k")
    path = path.replace("{", "").replace("}", "")  # any other parameter: its own name
    r = http.request(method, path + "?labeel=x&count=1")
    assert r.status_code == 400, r.text
    assert "'labeel'" in error_of(r)
    assert http.get("/v2/keys").json() == keys  # a rotate, say, did not happen


def test_known_query_parameters_and_the_token_are_accepted(small: Emulator) -> None:
    with api(small, anonymous=True) as plain:
        r = plain.get("/v2/logs", params={"qstash_token": small.token, "count": 1, "host": "a"})
        assert r.status_code == 200, r.text
        r = plain.get("/v2/dlq", params={"qstash_token": small.token, "host": "a"})
        assert r.status_code == 400 and "'host'" in error_of(r)
        # A publish's query string belongs to its destination.
        r = plain.post(f"{P}?labeel=x", params={"qstash_token": small.token})
        assert r.status_code == 200, r.text
