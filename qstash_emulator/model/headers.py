"""The publish headers: which option each sets and how its value is read, and the parsing of
a request's headers into PublishOptions (the names: model/names.py; the options:
model/options.py; reading each value: model/header_values.py; what a header may be on the
wire: model/sendable.py).

``RULES`` is the one table of publish headers: per header, the option field it sets, how its
value is read, and its description and example, from which the OpenAPI document lists it.

The rules: docs/behaviour.md#publish-headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .._errors import PlanLimit
from ..server.config import Settings
from .header_values import (
    GivenHeaders,
    parse_bool,
    parse_int,
    read_callback,
    read_dedup_id,
    read_delay,
    read_flow,
    read_forwarded,
    read_labels,
    read_method,
    read_name,
    read_redact,
    read_retries,
    read_retry_delay,
    read_run,
    read_timeout,
)
from .names import H
from .options import PublishOptions

__all__ = ["CALLBACK_OPTIONS", "H", "RULES", "Rule", "documented", "parse_publish"]


def parse_publish(
    items: Iterable[tuple[str, str]], settings: Settings, *, schedule: bool = False
) -> PublishOptions:
    """Validate publish-family headers (and ``upstash-*`` query keys passed as items).

    A value past a plan limit is a 400, or a 412 on a message of a workflow run."""
    headers = GivenHeaders(items)
    try:
        return _parse_publish(headers, settings, schedule)
    except PlanLimit as exc:
        if H.RUN_ID in headers.values:
            raise exc.for_workflow() from exc
        raise


def _parse_publish(headers: GivenHeaders, settings: Settings, schedule: bool) -> PublishOptions:
    values: dict[str, Any] = {}
    for option, header, read, whole, only_schedule in _READ:
        if whole is not None:
            if (value := whole(headers, settings)) is not None:
                values[option] = value
        elif read is not None and (schedule or not only_schedule):
            if (given := headers.get(header)) is not None:
                values[option] = read(given, settings)
    return PublishOptions(**values)


@dataclass(frozen=True)
class Rule:
    """One publish header: the PublishOptions field it sets and how its value is read, and
    what the OpenAPI document says of it (a rule without a field documents a header that
    another rule reads with its own; one without ``about`` is not a parameter of its own)."""

    header: str  # lower case, as H names it
    about: str | None
    example: str = ""
    option: str | None = None
    read: Callable[[str, Settings], Any] | None = None  # the header's value -> the field's
    whole: Callable[[GivenHeaders, Settings], Any] | None = None  # several headers -> the field's
    schedule: bool = False  # read when a schedule is created only


# Every publish header, in the order they are read (a request with several bad ones is refused
# for the first); the OpenAPI document lists the documented ones in this order.
RULES: tuple[Rule, ...] = (
    Rule(H.CONTENT_TYPE, "forwarded to the destination", "application/json"),
    Rule(H.METHOD, "HTTP method of the delivery (default POST)", "PUT", "method", read_method),
    Rule(
        H.DELAY, "wait before the first attempt: 10s, 5m, 1h30m, 2d", "10s", "delay_ms", read_delay
    ),
    Rule(
        H.NOT_BEFORE,
        "Unix time in seconds before which nothing is sent",
        "1767225600",
        "not_before_ms",
        lambda value, _: parse_int(value, "Upstash-Not-Before", 0, 10**11) * 1_000,
    ),
    Rule(H.RETRIES, "retries after the first attempt (default 3)", "2", "retries", read_retries),
    Rule(
        H.RETRY_DELAY,
        "milliseconds before a retry: an expression in `retried`",
        "1000 * retried",
        "retry_delay",
        lambda value, _: read_retry_delay(value, "Upstash-Retry-Delay"),
    ),
    Rule(
        H.TIMEOUT,
        "how long one attempt may take",
        "30s",
        "timeout_ms",
        lambda value, settings: read_timeout(
            value, "Upstash-Timeout", settings.limits.max_timeout_s
        ),
    ),
    Rule(
        H.DEDUP_ID,
        "publishes with the same id within the window are one message",
        "order-1",
        "dedup_id",
        read_dedup_id,
    ),
    Rule(
        H.CONTENT_DEDUP,
        "deduplicate by destination, body and headers",
        "true",
        "content_dedup",
        lambda value, _: parse_bool(value, "Upstash-Content-Based-Deduplication"),
    ),
    Rule(
        H.LABEL,
        "labels to filter logs and the DLQ by, comma-separated",
        "billing",
        "labels",
        read_labels,
    ),
    Rule(
        H.REDACT,
        "hide body, header or header[Name] in logs and the DLQ",
        "body",
        "redact",
        lambda value, _: read_redact(value),
    ),
    Rule(
        H.FLOW_KEY,
        "flow-control key shared by messages that limit each other",
        "tenant-1",
        "flow",
        whole=lambda headers, _: read_flow(headers),
    ),
    Rule(H.FLOW_VALUE, "parallelism=, rate=, period= for the flow-control key", "parallelism=2"),
    # Upstash Workflow: the SDKs send these on every message of a run.
    Rule(
        H.RUN_ID,
        "the Upstash Workflow run the message belongs to",
        "wfr_example",
        "workflow",
        whole=lambda headers, _: read_run(headers, "Upstash-"),
    ),
    Rule(H.RUN_INIT, "true: the message starts its run; false: it joins a running one", "true"),
    Rule(H.RUN_URL, "the run's workflow endpoint", "http://127.0.0.1:3000/workflow"),
    Rule(H.CALL_TYPE, "step, toCallback, fromCallback or failureCall", "step"),
    Rule(H.INVOKE, "true: the body is a context.invoke envelope", "false"),
    Rule(H.FEATURE_SET, "the SDK's capabilities, comma-separated", "LazyFetch,InitialBody"),
    Rule(
        H.TRIGGER_BY_SDK,
        "true: the SDK's own start of a run the trigger API created for it",
        "false",
    ),
    Rule(
        H.CALLBACK,
        "URL told about every attempt",
        "http://127.0.0.1:3000/cb",
        "callback",
        whole=lambda headers, settings: read_callback(
            headers, H.CALLBACK, "Upstash-Callback", settings.limits
        ),
    ),
    Rule(
        H.FAILURE_CALLBACK,
        "URL told once the message has failed",
        "http://127.0.0.1:3000/f",
        "failure_callback",
        whole=lambda headers, settings: read_callback(
            headers, H.FAILURE_CALLBACK, "Upstash-Failure-Callback", settings.limits
        ),
    ),
    Rule(H.HEADER_FORWARD, "forward every incoming header, not only Upstash-Forward-*", "false"),
    Rule(H.FORWARD, None, option="header", whole=read_forwarded),
    Rule(
        H.QUEUE_NAME,
        "publish each run through this queue",
        "jobs",
        "queue_name",
        read_name("Upstash-Queue-Name"),
        schedule=True,
    ),
    Rule(
        H.CRON,
        "when to publish: five cron fields, optionally CRON_TZ=Zone first",
        "*/5 * * * *",
        "cron",
        lambda value, _: value.strip(),
        schedule=True,
    ),
    Rule(
        H.SCHEDULE_ID,
        "the schedule's id; an existing one is replaced",
        "nightly",
        "schedule_id",
        read_name("Upstash-Schedule-Id"),
        schedule=True,
    ),
)
_READ = tuple(
    (rule.option, rule.header, rule.read, rule.whole, rule.schedule)
    for rule in RULES
    if rule.option is not None
)
# The headers that configure a callback, after its prefix (Upstash-Callback-Method ...).
CALLBACK_OPTIONS = {
    "method": ("HTTP method of the callback", "POST"),
    "timeout": ("timeout of one callback attempt", "10s"),
    "retries": ("retries of the callback", "1"),
    "retry-delay": ("milliseconds before a callback retry", "1000"),
    "delay": ("wait before the callback is sent", "1s"),
}


def documented(*, schedule: bool) -> dict[str, tuple[str, str]]:
    """The documented publish headers (or schedule-only ones): name -> (about, example)."""
    return {
        rule.header: (rule.about, rule.example)
        for rule in RULES
        if rule.about is not None and rule.schedule == schedule
    }
