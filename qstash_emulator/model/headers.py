"""The parsing of publish-family headers into PublishOptions, and the rules of what a header
may carry on the wire (the names: model/names.py; the options: model/options.py).

``RULES`` is the one table of publish headers: per header, the option field it sets, how its
value is read, and its description and example, from which the OpenAPI document lists it.

The rules: docs/behaviour.md#publish-headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .._errors import BadRequest, PlanLimit
from ..server.config import Quota, Settings
from .destination import validate_name, validate_url
from .durations import parse_duration_ms
from .names import H
from .options import CallbackConfig, FlowControl, PublishOptions, RunHeaders

__all__ = [
    "CALLBACK_OPTIONS",
    "H",
    "RULES",
    "Rule",
    "canonical",
    "check_sendable",
    "documented",
    "on_the_wire",
    "unsendable",
    "parse_bool",
    "parse_flow_value",
    "parse_publish",
]


# Connection and framing headers: the transport sets them from the request it sends (the body's
# own length, the destination's host), so a forwarded copy never reaches the wire. Clients that
# re-forward every header they received (the Upstash Workflow SDKs do) would otherwise truncate
# the body or misroute it.
_FRAMING = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
# Never forwarded with Upstash-Header-Forward either: auth and SDK noise.
_NOT_FORWARDED_ALL = frozenset({"authorization", "accept-encoding"})
# What HTTP/1.1 can carry (RFC 9110 5.1 and 5.5, and Go's net/http, which refuses the rest
# when it sends): a name is a token; a value has no control character but the tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_REDACT = re.compile(r"^(body|headers?|headers?\[([^\]]+)\])$", re.IGNORECASE)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_WEEK_MS = 7 * 86_400_000
_CALL_TYPES = ("step", "toCallback", "fromCallback", "failureCall")


def canonical(name: str) -> str:
    """Go's canonical header form: ``test-header`` becomes ``Test-Header``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def on_the_wire(name: str) -> bool:
    """Whether a forwarded header may be sent: connection and framing ones are the transport's."""
    lower = name.lower()
    return lower not in _FRAMING and not lower.startswith("proxy-")


def unsendable(name: str, value: str) -> str | None:
    """Why a header cannot be sent as given, or None when it can."""
    if not _TOKEN.fullmatch(name):
        return f"{name!r} is not a valid HTTP header name"
    if (bad := _CONTROL.search(value)) is not None:
        return f"the value of {name!r} has a control character ({bad.group()!r})"
    return None


def check_sendable(name: str, value: str, sent_as: str | None = None) -> None:
    """Refuse with a 400 naming header ``name`` (as the caller wrote it) when it, or the
    header ``sent_as`` it becomes on the wire, cannot be sent."""
    reason = unsendable(sent_as if sent_as is not None else name, value)
    if reason is not None:
        shown = canonical(name) if _TOKEN.fullmatch(name) else repr(name)
        raise BadRequest(f"invalid {shown}: {reason}")


def parse_bool(value: str, field: str) -> bool:
    text = value.strip()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"invalid {field}: {value!r} is not true or false")


def _int(value: str, field: str, low: int, high: int) -> int:
    text = value.strip()
    if not re.fullmatch(r"-?\d{1,18}", text):
        raise BadRequest(f"invalid {field}: {value!r} is not an integer")
    number = int(text)
    if not low <= number <= high:
        raise BadRequest(f"invalid {field}: {number} is out of range [{low}, {high}]")
    return number


def parse_flow_value(value: str, field: str = "Upstash-Flow-Control-Value") -> dict[str, int]:
    """``parallelism=3, rate=10, period=1m`` into ints (period in seconds)."""
    parsed: dict[str, int] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in {"parallelism", "rate", "period"}:
            raise BadRequest(
                f"invalid {field}: {part.strip()!r}, want parallelism=, rate=, period="
            )
        if name == "period":
            ms = parse_duration_ms(raw, field)
            if not 1_000 <= ms <= _WEEK_MS:
                raise BadRequest(f"invalid {field}: period must be between 1s and 1 week")
            parsed[name] = ms // 1_000
        else:
            parsed[name] = _int(raw, field, 1, 1_000_000)
    return parsed


class _Headers:
    """A lower-cased view of the request headers that refuses conflicting duplicates."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in items:
            self.values.setdefault(name.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        values = self.values.get(name)
        if not values:
            return None
        if len(set(values)) > 1:
            raise BadRequest(f"invalid {canonical(name)}: header given {len(values)} times")
        return values[0]


def parse_publish(
    items: Iterable[tuple[str, str]], settings: Settings, *, schedule: bool = False
) -> PublishOptions:
    """Validate publish-family headers (and ``upstash-*`` query keys passed as items).

    A value past a plan limit is a 400, or a 412 on a message of a workflow run."""
    headers = _Headers(items)
    try:
        return _parse_publish(headers, settings, schedule)
    except PlanLimit as exc:
        if H.RUN_ID in headers.values:
            raise exc.for_workflow() from exc
        raise


def _parse_publish(headers: _Headers, settings: Settings, schedule: bool) -> PublishOptions:
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
    whole: Callable[[_Headers, Settings], Any] | None = None  # several headers -> the field's
    schedule: bool = False  # read when a schedule is created only


def _method(value: str, settings: Settings) -> str:
    method = value.strip().upper()
    if method not in _METHODS:
        raise BadRequest(f"invalid Upstash-Method: {value!r}")
    return method


def _delay(value: str, settings: Settings) -> int:
    ms = parse_duration_ms(value, "Upstash-Delay")
    if ms > settings.limits.max_delay_s * 1_000:
        raise PlanLimit(f"invalid Upstash-Delay: {value} exceeds the plan's maximum delay")
    return ms


def _retries(value: str, settings: Settings) -> int:
    retries = _int(value, "Upstash-Retries", 0, 10**18)
    if retries > settings.max_retries:
        raise PlanLimit(
            f"invalid Upstash-Retries: {retries} is out of range "
            f"[0, {settings.max_retries}] (the plan's maximum)"
        )
    return retries


def _dedup_id(value: str, settings: Settings) -> str:
    if ":" in value or not value.strip():
        raise BadRequest(
            "invalid Upstash-Deduplication-Id: DeduplicationId cannot contain ':'"
            if value.strip()
            else "invalid Upstash-Deduplication-Id: empty"
        )
    return value


def _labels(value: str, settings: Settings) -> list[str]:
    labels = [label.strip() for label in value.split(",") if label.strip()]
    for label in labels:
        validate_name(label, "Upstash-Label")
    return labels


def _forward(headers: _Headers, settings: Settings) -> dict[str, list[str]]:
    header_forward = headers.get(H.HEADER_FORWARD)
    forward_all = header_forward is not None and parse_bool(
        header_forward, "Upstash-Header-Forward"
    )
    return _forwarded(headers, forward_all)


def _name(field: str) -> Callable[[str, Settings], str]:
    return lambda value, settings: validate_name(value.strip(), field)


# Every publish header, in the order they are read (a request with several bad ones is refused
# for the first); the OpenAPI document lists the documented ones in this order.
RULES: tuple[Rule, ...] = (
    Rule(H.CONTENT_TYPE, "forwarded to the destination", "application/json"),
    Rule(H.METHOD, "HTTP method of the delivery (default POST)", "PUT", "method", _method),
    Rule(H.DELAY, "wait before the first attempt: 10s, 5m, 1h30m, 2d", "10s", "delay_ms", _delay),
    Rule(
        H.NOT_BEFORE,
        "Unix time in seconds before which nothing is sent",
        "1767225600",
        "not_before_ms",
        lambda value, _: _int(value, "Upstash-Not-Before", 0, 10**11) * 1_000,
    ),
    Rule(H.RETRIES, "retries after the first attempt (default 3)", "2", "retries", _retries),
    Rule(
        H.RETRY_DELAY,
        "milliseconds before a retry: an expression in `retried`",
        "1000 * retried",
        "retry_delay",
        lambda value, _: _retry_delay(value, "Upstash-Retry-Delay"),
    ),
    Rule(
        H.TIMEOUT,
        "how long one attempt may take",
        "30s",
        "timeout_ms",
        lambda value, settings: _timeout(value, "Upstash-Timeout", settings.limits.max_timeout_s),
    ),
    Rule(
        H.DEDUP_ID,
        "publishes with the same id within the window are one message",
        "order-1",
        "dedup_id",
        _dedup_id,
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
        _labels,
    ),
    Rule(
        H.REDACT,
        "hide body, header or header[Name] in logs and the DLQ",
        "body",
        "redact",
        lambda value, _: _parse_redact(value),
    ),
    Rule(
        H.FLOW_KEY,
        "flow-control key shared by messages that limit each other",
        "tenant-1",
        "flow",
        whole=lambda headers, _: _parse_flow(headers),
    ),
    Rule(H.FLOW_VALUE, "parallelism=, rate=, period= for the flow-control key", "parallelism=2"),
    # Upstash Workflow: the SDKs send these on every message of a run.
    Rule(
        H.RUN_ID,
        "the Upstash Workflow run the message belongs to",
        "wfr_example",
        "workflow",
        whole=lambda headers, _: _parse_run(headers, "Upstash-"),
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
        whole=lambda headers, settings: _parse_callback(
            headers, H.CALLBACK, "Upstash-Callback", settings.limits
        ),
    ),
    Rule(
        H.FAILURE_CALLBACK,
        "URL told once the message has failed",
        "http://127.0.0.1:3000/f",
        "failure_callback",
        whole=lambda headers, settings: _parse_callback(
            headers, H.FAILURE_CALLBACK, "Upstash-Failure-Callback", settings.limits
        ),
    ),
    Rule(H.HEADER_FORWARD, "forward every incoming header, not only Upstash-Forward-*", "false"),
    Rule(H.FORWARD, None, option="header", whole=_forward),
    Rule(
        H.QUEUE_NAME,
        "publish each run through this queue",
        "jobs",
        "queue_name",
        _name("Upstash-Queue-Name"),
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
        _name("Upstash-Schedule-Id"),
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


def _timeout(value: str, field: str, max_s: int) -> int:
    ms = parse_duration_ms(value, field)
    if ms <= 0:
        raise BadRequest(f"invalid {field}: must be positive")
    if ms > max_s * 1_000:
        raise PlanLimit(f"invalid {field}: {value} exceeds the plan's maximum of {max_s}s")
    return ms


def _parse_redact(value: str) -> list[str]:
    fields = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        match = _REDACT.match(part)
        if not match:
            raise BadRequest(
                f"invalid Upstash-Redact-Fields: {part!r}, want body, header or header[Name]"
            )
        fields.append(
            f"header[{canonical(match.group(2))}]"
            if match.group(2)
            else "body"
            if part.lower() == "body"
            else "header"
        )
    return fields


def _parse_flow(headers: _Headers, label: str = "Upstash-") -> FlowControl | None:
    key, value = headers.get(H.FLOW_KEY), headers.get(H.FLOW_VALUE)
    if key is None and value is None:
        return None
    if not key or not key.strip():
        raise BadRequest(
            f"invalid {label}Flow-Control-Key: required with {label}Flow-Control-Value"
        )
    parsed = parse_flow_value(value or "", f"{label}Flow-Control-Value")
    if "parallelism" not in parsed and "rate" not in parsed:
        raise BadRequest(f"invalid {label}Flow-Control-Value: give parallelism or rate")
    return FlowControl(
        key=key.strip(),
        parallelism=parsed.get("parallelism"),
        rate=parsed.get("rate"),
        period=parsed.get("period", 1),
    )


def _retry_delay(expr: str, field: str) -> str:
    """``expr`` once checked as a retry-delay expression."""
    # The expression parser is costly to compile and only needed once a request sends a
    # retry delay: lazy, so it stays out of start-up.
    from .expressions import RetryDelayExpression

    return RetryDelayExpression(expr, field).source


def _parse_callback(
    headers: _Headers, prefix: str, label: str, limits: Quota
) -> CallbackConfig | None:
    if not any(name.startswith(prefix) for name in headers.values):
        return None
    url = headers.get(prefix)
    forward = prefix + "-forward-"
    forwarded = {
        canonical(n[len(forward) :]): _sendable(n, vs, n[len(forward) :])
        for n, vs in headers.values.items()
        if n.startswith(forward) and len(n) > len(forward) and on_the_wire(n[len(forward) :])
    }
    # The options are checked even without the URL: a malformed value is refused, not ignored.
    method = (headers.get(prefix + "-method") or "POST").strip().upper()
    if method not in _METHODS:
        raise BadRequest(f"invalid {label}-Method: {method!r}")
    timeout = headers.get(prefix + "-timeout")
    retries = headers.get(prefix + "-retries")
    expr = headers.get(prefix + "-retry-delay")
    delay = headers.get(prefix + "-delay")
    config = CallbackConfig(
        url="",
        method=method,
        timeout_ms=_timeout(timeout, f"{label}-Timeout", limits.max_timeout_s) if timeout else None,
        retries=_int(retries, f"{label}-Retries", 0, 100) if retries is not None else None,
        retry_delay=_retry_delay(expr, f"{label}-Retry-Delay") if expr else None,
        delay_ms=parse_duration_ms(delay, f"{label}-Delay") if delay else 0,
        header=forwarded,
    )
    # The prefix rule: what follows the prefix configures the callback message itself.
    sub = _Headers(
        ("upstash-" + n[len(prefix) + 1 :], v)
        for n, vs in headers.values.items()
        if n.startswith(prefix + "-")
        for v in vs
    )
    if (run := _parse_run(sub, label + "-")) is not None:
        config["workflow"] = run
    if (flow := _parse_flow(sub, label + "-")) is not None:
        config["flow"] = flow
    nested = _parse_callback(sub, "upstash-failure-callback", label + "-Failure-Callback", limits)
    if nested is not None:
        config["failure_callback"] = nested
    if url is None:
        return None
    config["url"] = validate_url(url.strip(), label)
    return config


def _parse_run(headers: _Headers, label: str) -> RunHeaders | None:
    """The Workflow headers (``label`` names them in errors: ``Upstash-`` or a prefix)."""
    run_id = headers.get(H.RUN_ID)
    init = headers.get(H.RUN_INIT)
    if run_id is None:
        if init is not None:
            raise BadRequest(f"invalid {label}Workflow-RunId: required with {label}Workflow-Init")
        return None
    run_id = run_id.strip()
    if not run_id or len(run_id) > 256 or any(c in run_id for c in "/ \t\r\n"):
        raise BadRequest(
            f"invalid {label}Workflow-RunId: {run_id!r} must be 1-256 characters without "
            "'/' or whitespace"
        )
    call_type = (headers.get(H.CALL_TYPE) or "step").strip()
    if call_type not in _CALL_TYPES:
        raise BadRequest(
            f"invalid {label}Workflow-CallType: {call_type!r}, want one of {', '.join(_CALL_TYPES)}"
        )
    url = headers.get(H.RUN_URL)
    invoke = headers.get(H.INVOKE)
    by_sdk = headers.get(H.TRIGGER_BY_SDK)
    return RunHeaders(
        run_id=run_id,
        init=parse_bool(init, f"{label}Workflow-Init") if init is not None else False,
        url=validate_url(url.strip(), f"{label}Workflow-Url") if url is not None else None,
        call_type=call_type,
        invoke=parse_bool(invoke, f"{label}Workflow-Invoke") if invoke is not None else False,
        features=[f.strip() for f in (headers.get(H.FEATURE_SET) or "").split(",") if f.strip()],
        by_sdk=parse_bool(by_sdk, "upstash-workflow-trigger-by-sdk") if by_sdk else False,
    )


def _forwarded(headers: _Headers, forward_all: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    own_type: list[str] = []
    for name, values in headers.values.items():
        if name.startswith(H.FORWARD):
            if len(name) > len(H.FORWARD) and on_the_wire(name[len(H.FORWARD) :]):
                sent = _sendable(name, values, name[len(H.FORWARD) :])
                out.setdefault(canonical(name[len(H.FORWARD) :]), []).extend(sent)
        elif name == H.CONTENT_TYPE:
            own_type = _sendable(name, values[:1], name)
        elif (
            forward_all
            and not name.startswith("upstash-")
            and name not in _NOT_FORWARDED_ALL
            and on_the_wire(name)
        ):
            out.setdefault(canonical(name), []).extend(_sendable(name, values, name))
    # One Content-Type: a forwarded one wins over the publish request's own.
    if "Content-Type" in out:
        out["Content-Type"] = out["Content-Type"][:1]
    elif own_type:
        out["Content-Type"] = own_type
    return out


def _sendable(name: str, values: list[str], sent_as: str) -> list[str]:
    for value in values:
        check_sendable(name, value, sent_as)
    return values
