"""Reading the value of a publish header into its option's: one header's text (a method, a
duration, a number, a list), or several headers at once (a callback and the headers its
prefix gives it, a workflow run, flow control, the forwarded headers). A bad value is a 400
that names the header as the caller wrote it.

Which header sets which option, with which reader: ``model/headers.RULES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .._errors import BadRequest, PlanLimit
from ..server.config import Quota, Settings
from .destination import validate_name, validate_url
from .durations import parse_duration_ms
from .names import H
from .options import CallbackConfig, FlowControl, RunHeaders
from .sendable import canonical, check_sendable, on_the_wire

__all__ = [
    "GivenHeaders",
    "parse_bool",
    "parse_flow_value",
    "parse_int",
    "read_callback",
    "read_dedup_id",
    "read_delay",
    "read_flow",
    "read_forwarded",
    "read_labels",
    "read_method",
    "read_name",
    "read_redact",
    "read_retries",
    "read_retry_delay",
    "read_run",
    "read_timeout",
]


# Never forwarded with Upstash-Header-Forward either: auth and SDK noise.
_NOT_FORWARDED_ALL = frozenset({"authorization", "accept-encoding"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_REDACT = re.compile(r"^(body|headers?|headers?\[([^\]]+)\])$", re.IGNORECASE)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_WEEK_MS = 7 * 86_400_000
_CALL_TYPES = ("step", "toCallback", "fromCallback", "failureCall")


def parse_bool(value: str, field: str) -> bool:
    text = value.strip()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"invalid {field}: {value!r} is not true or false")


def parse_int(value: str, field: str, low: int, high: int) -> int:
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
            parsed[name] = parse_int(raw, field, 1, 1_000_000)
    return parsed


class GivenHeaders:
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


def read_method(value: str, settings: Settings) -> str:
    method = value.strip().upper()
    if method not in _METHODS:
        raise BadRequest(f"invalid Upstash-Method: {value!r}")
    return method


def read_delay(value: str, settings: Settings) -> int:
    ms = parse_duration_ms(value, "Upstash-Delay")
    if ms > settings.limits.max_delay_s * 1_000:
        raise PlanLimit(f"invalid Upstash-Delay: {value} exceeds the plan's maximum delay")
    return ms


def read_retries(value: str, settings: Settings) -> int:
    retries = parse_int(value, "Upstash-Retries", 0, 10**18)
    if retries > settings.max_retries:
        raise PlanLimit(
            f"invalid Upstash-Retries: {retries} is out of range "
            f"[0, {settings.max_retries}] (the plan's maximum)"
        )
    return retries


def read_dedup_id(value: str, settings: Settings) -> str:
    if ":" in value or not value.strip():
        raise BadRequest(
            "invalid Upstash-Deduplication-Id: DeduplicationId cannot contain ':'"
            if value.strip()
            else "invalid Upstash-Deduplication-Id: empty"
        )
    return value


def read_labels(value: str, settings: Settings) -> list[str]:
    labels = [label.strip() for label in value.split(",") if label.strip()]
    for label in labels:
        validate_name(label, "Upstash-Label")
    return labels


def read_forwarded(headers: GivenHeaders, settings: Settings) -> dict[str, list[str]]:
    header_forward = headers.get(H.HEADER_FORWARD)
    forward_all = header_forward is not None and parse_bool(
        header_forward, "Upstash-Header-Forward"
    )
    return _forwarded(headers, forward_all)


def read_name(field: str) -> Callable[[str, Settings], str]:
    return lambda value, settings: validate_name(value.strip(), field)


def read_timeout(value: str, field: str, max_s: int) -> int:
    ms = parse_duration_ms(value, field)
    if ms <= 0:
        raise BadRequest(f"invalid {field}: must be positive")
    if ms > max_s * 1_000:
        raise PlanLimit(f"invalid {field}: {value} exceeds the plan's maximum of {max_s}s")
    return ms


def read_redact(value: str) -> list[str]:
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


def read_flow(headers: GivenHeaders, label: str = "Upstash-") -> FlowControl | None:
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


def read_retry_delay(expr: str, field: str) -> str:
    """``expr`` once checked as a retry-delay expression."""
    # The expression parser is costly to compile and only needed once a request sends a
    # retry delay: lazy, so it stays out of start-up.
    from .expressions import RetryDelayExpression

    return RetryDelayExpression(expr, field).source


def read_callback(
    headers: GivenHeaders, prefix: str, label: str, limits: Quota
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
        timeout_ms=read_timeout(timeout, f"{label}-Timeout", limits.max_timeout_s)
        if timeout
        else None,
        retries=parse_int(retries, f"{label}-Retries", 0, 100) if retries is not None else None,
        retry_delay=read_retry_delay(expr, f"{label}-Retry-Delay") if expr else None,
        delay_ms=parse_duration_ms(delay, f"{label}-Delay") if delay else 0,
        header=forwarded,
    )
    # The prefix rule: what follows the prefix configures the callback message itself.
    sub = GivenHeaders(
        ("upstash-" + n[len(prefix) + 1 :], v)
        for n, vs in headers.values.items()
        if n.startswith(prefix + "-")
        for v in vs
    )
    if (run := read_run(sub, label + "-")) is not None:
        config["workflow"] = run
    if (flow := read_flow(sub, label + "-")) is not None:
        config["flow"] = flow
    nested = read_callback(sub, "upstash-failure-callback", label + "-Failure-Callback", limits)
    if nested is not None:
        config["failure_callback"] = nested
    if url is None:
        return None
    config["url"] = validate_url(url.strip(), label)
    return config


def read_run(headers: GivenHeaders, label: str) -> RunHeaders | None:
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


def _forwarded(headers: GivenHeaders, forward_all: bool) -> dict[str, list[str]]:
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
