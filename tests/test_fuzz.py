"""Property-based fuzzing: schemathesis drives every operation of the emulator's own OpenAPI
document, and hypothesis throws arbitrary header values and bodies at publish and batch.

Whatever comes in, the answer is never a 5xx, every 4xx is ``{"error": "..."}``, and the
server keeps serving. Deliveries never leave the process: an in-process transport answers them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from qstash_emulator import Emulator
from qstash_emulator.api._operations import OPENAPI_PATH, build_document
from qstash_emulator.delivery.transport import Response as Reply
from qstash_emulator.model.headers import H
from qstash_emulator.model.sendable import canonical

from .helpers import Answering, api, api_routes, auth

# The default run's depth (736 requests, 11 s); .ci/run fuzzes again with 25 (4,600 requests).
# Deeper local runs: QSTASH_EMULATOR_FUZZ_EXAMPLES=200 python -m pytest tests/test_fuzz.py
EXAMPLES = int(os.environ.get("QSTASH_EMULATOR_FUZZ_EXAMPLES", "4"))
# Deliberate 5xx answers: fault injection programs them, so it is not fuzzed here.
_EXCLUDED = ("/_emulator/faults",)
COUNTS = {"requests": 0}


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Emulator]:
    with Emulator(max_message_size=64 << 10) as emu:
        emu.add_responder(Answering(lambda method, url: Reply(200, [], b"ok")))
        yield emu


@pytest.fixture(scope="module")
def http(fuzzed: Emulator) -> Iterator[httpx.Client]:
    with api(fuzzed, anonymous=True) as client:
        yield client


def _schema() -> Any:
    """The document the server serves, built here so operations are known at collection."""
    doc = build_document(api_routes(), "test")
    return schemathesis.openapi.from_dict(doc)


SCHEMA = _schema()
SESSION = requests.Session()
OPERATIONS = [
    result.ok()
    for result in SCHEMA.get_all_operations()
    if not result.ok().path.startswith(_EXCLUDED)
]


# uvicorn's HTTP parser answers this itself, before any route, to bytes that are not HTTP
# (a control character in a header value, which negative cases generate now and then).
_PARSER_REFUSAL = "Invalid HTTP request received."


def _error_shape(response: Any) -> None:
    """Every 4xx is JSON ``{"error": "<non-empty text>"}`` and nothing else."""
    COUNTS["requests"] += 1
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code == 400 and response.text == _PARSER_REFUSAL:
        return
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str) and body["error"], body
        content_type = response.headers["content-type"]
        assert content_type in ("application/json", ["application/json"]), content_type


def test_served_document_is_the_one_fuzzed(fuzzed: Emulator) -> None:
    r = httpx.get(fuzzed.url + OPENAPI_PATH, params={"qstash_token": fuzzed.token})
    assert r.status_code == 200
    assert r.json()["paths"] == SCHEMA.raw_schema["paths"]


def _nothing_to_negate(operation: Any) -> bool:
    """No token and no input but its path (the probe, a run's webhook URL): nothing a negative
    case could break (hypothesis: Unsatisfiable)."""
    raw = SCHEMA.raw_schema["paths"][operation.path][operation.method.lower()]
    only_path = all(p["in"] == "path" for p in raw["parameters"])
    return raw.get("security") == [] and "requestBody" not in raw and only_path


CASES = [
    pytest.param(op, mode, id=f"{op.method.upper()} {op.path}-{mode.value}")
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and _nothing_to_negate(op))
]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_no_operation_answers_5xx_and_errors_are_json(
    fuzzed: Emulator, operation: Any, mode: GenerationMode
) -> None:
    creds = auth(fuzzed)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        response = case.call(base_url=fuzzed.url, headers=creds, session=SESSION)
        case.validate_response(response, checks=[not_a_server_error])
        _error_shape(response)

    fuzz()


_NAMES = [
    H.DELAY,
    H.RETRIES,
    H.RETRY_DELAY,
    H.TIMEOUT,
    H.NOT_BEFORE,
    H.METHOD,
    H.DEDUP_ID,
    H.CONTENT_DEDUP,
    H.LABEL,
    H.REDACT,
    H.FLOW_KEY,
    H.FLOW_VALUE,
    H.CALLBACK,
    H.CALLBACK + "-retries",
    H.FAILURE_CALLBACK + "-timeout",
    H.HEADER_FORWARD,
]
_header_names = st.sampled_from(_NAMES)
# Header values an HTTP client can send: latin-1 without control characters.
_header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
)
_junk = st.one_of(
    _header_values,
    st.sampled_from(["1s", "-1s", "0", "99999999999999999999", "1e9", "retried / 0", "1h30m"]),
)


@given(
    headers=st.lists(st.tuples(_header_names, _junk), max_size=4),
    body=st.binary(max_size=256),
)
@settings(max_examples=EXAMPLES * 12, deadline=None, suppress_health_check=list(HealthCheck))
def test_publish_survives_arbitrary_headers_and_bodies(
    fuzzed: Emulator, http: httpx.Client, headers: list[tuple[str, str]], body: bytes
) -> None:
    sent = [(b"Authorization", f"Bearer {fuzzed.token}".encode()), (b"Upstash-Delay", b"1d")]
    sent += [(canonical(n).encode(), v.strip().encode("latin-1")) for n, v in headers]
    r = http.post("/v2/publish/http://127.0.0.1:9/fuzz", headers=sent, content=body)
    _error_shape(r)
    assert r.status_code in (200, 202, 400), r.text
    if r.status_code == 400:
        # The message names the header it refused (or the one missing beside it).
        assert any(canonical(n) in r.json()["error"] for n in _NAMES), r.text


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_entry = st.fixed_dictionaries(
    {},
    optional={
        "destination": st.one_of(st.just("http://127.0.0.1:9/b"), _json),
        "headers": st.one_of(st.dictionaries(_header_names, _junk, max_size=3), _json),
        "body": _json,
        "queue": st.one_of(st.just("q1"), _json),
    },
)


@given(entries=st.one_of(st.lists(_entry, max_size=4), _json))
@settings(max_examples=EXAMPLES * 12, deadline=None, suppress_health_check=list(HealthCheck))
def test_batch_survives_arbitrary_json(fuzzed: Emulator, http: httpx.Client, entries: Any) -> None:
    r = http.post(
        "/v2/batch",
        headers=auth(fuzzed),
        json=entries,
    )
    _error_shape(r)
    assert r.status_code in (200, 400, 412), r.text
    if isinstance(entries, list):
        assert r.status_code == 200 and len(r.json()) == len(entries)


def test_still_serving_after_the_fuzzing(fuzzed: Emulator) -> None:
    r = httpx.get(f"{fuzzed.url}/v2/keys", headers=auth(fuzzed))
    assert r.status_code == 200
    print(f"fuzzing sent {COUNTS['requests']} requests")
