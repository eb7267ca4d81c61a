"""Security: every endpoint wants a valid token, users never see each other's data, read-only
tokens cannot write, the dev server binds loopback, and signatures never verify wrongly."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import given, settings, strategies as st
from qstash import Receiver
from qstash.errors import SignatureError

from qstash_emulator import Emulator, User, check_signature, sign
from qstash_emulator.api._declare import OperationRoute

from .helpers import (
    Destination,
    EmulatorProcess,
    api,
    api_routes,
    auth,
    error_of,
    free_port,
    wait_until,
)

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_VALUES = {"destination": "http://127.0.0.1:9/x"}


def _operations() -> list[tuple[str, str]]:
    """Every operation but those called without a token by design (declared ``tokenless``: a
    run's webhook URL, whose path names the user and run, and the readiness probe, which
    shows nothing of any user: tests/test_health.py)."""
    ops = []
    for route in api_routes():
        assert isinstance(route, OperationRoute)
        if not route.operation.tokenless:
            path = _PARAM.sub(lambda m: _VALUES.get(m.group(1), "x"), route.path)
            ops.append((route.operation.method, path))
    return ops


OPERATIONS = _operations()
WRITES = [op for op in OPERATIONS if op[0] != "GET"]


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def http(server: Emulator) -> Iterator[httpx.Client]:
    with api(server, anonymous=True) as client:
        yield client


# Tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_every_endpoint_refuses_a_missing_or_wrong_token(
    server: Emulator, http: httpx.Client, method: str, path: str
) -> None:
    token = server.token
    for headers, params in [
        ({}, {}),
        ({"Authorization": "Bearer"}, {}),
        ({"Authorization": "Bearer not-a-token"}, {}),
        ({"Authorization": f"Bearer {token}x"}, {}),
        ({"Authorization": f"Basic {token}"}, {}),
        (auth(token[:-1]), {}),
        ({}, {"qstash_token": "not-a-token"}),
    ]:
        r = http.request(method, path, headers=headers, params=params, content=b"{}")
        assert r.status_code == 401, (headers, params, r.text)
        assert "Unauthorized" in error_of(r)


def _documented(server: Emulator) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document the server serves that wants a token, with its
    parameters filled."""
    r = httpx.get(f"{server.url}/v2/openapi.json", headers=auth(server))
    ops = []
    for template, item in r.json()["paths"].items():
        path = _PARAM.sub(lambda m: _VALUES.get(m.group(1), "x"), template)
        ops.extend(
            (method.upper(), path) for method, op in item.items() if op.get("security") != []
        )
    return sorted(ops)


# Query values and a body that every route would refuse, were it to judge them.
_BAD_QUERY = {"source": "bogus", "count": "0", "labeel": "x", "state": "bogus", "cancel": "x"}


def test_authentication_comes_before_validation_on_every_documented_route(
    server: Emulator, http: httpx.Client
) -> None:
    """Without a token bad input gets 401, and a read-only token's write 403: nothing about
    the request is judged before who sent it."""
    readonly = server.create_user().readonly_token
    ops = _documented(server)
    assert len(ops) > 60
    judged = []
    for method, path in ops:
        r = http.request(method, path, params=_BAD_QUERY, content=b"not json")
        if r.status_code != 401:
            judged.append((method, path, r.status_code, r.text))
        if method not in ("GET", "HEAD"):
            creds = auth(readonly)
            r = http.request(method, path, params=_BAD_QUERY, headers=creds, content=b"not json")
            if r.status_code != 403:
                judged.append((method, path, r.status_code, r.text))
    assert judged == []


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[" ".join(o) for o in WRITES])
def test_a_read_only_token_cannot_write(
    server: Emulator, http: httpx.Client, method: str, path: str
) -> None:
    user = server.create_user()
    assert user.readonly_token
    r = http.request(method, path, headers=auth(user.readonly_token), content=b"{}")
    assert r.status_code == 403, r.text
    assert "read-only" in error_of(r)
    # Nothing was written on its behalf.
    creds = auth(user)
    assert http.get("/v2/logs", headers=creds).json()["logs"] == []
    assert http.get("/v2/queues", headers=creds).json() == []
    assert http.get("/v2/schedules", headers=creds).json() == []


def test_a_read_only_token_can_read_everything(server: Emulator, http: httpx.Client) -> None:
    user = server.create_user()
    creds = auth(user.readonly_token)
    for method, path in OPERATIONS:
        if method == "GET" and "/x" not in path:
            r = http.get(path, headers=creds)
            assert r.status_code == 200, (path, r.text)


# Isolation -----------------------------------------------------------------------------------


class Client:
    def __init__(self, emulator: Emulator, user: User) -> None:
        self.user = user
        self.http = api(emulator, user)

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)


def _setup_alice(alice: Client, destination: Destination) -> dict[str, str]:
    dead = f"http://127.0.0.1:{free_port()}/dead"
    r = alice("POST", f"/v2/publish/{dead}", headers={"Upstash-Retries": "0"})
    dead_id = r.json()["messageId"]
    r = alice(
        "POST",
        f"/v2/publish/{destination.url}/later",
        headers={"Upstash-Delay": "1h", "Upstash-Deduplication-Id": "same"},
    )
    ids = {"message": r.json()["messageId"], "dead": dead_id}
    r = alice(
        "POST",
        f"/v2/schedules/{destination.url}/s",
        headers={"Upstash-Cron": "0 0 1 1 *", "Upstash-Schedule-Id": "shared-name"},
    )
    assert r.status_code == 200, r.text
    assert alice("POST", "/v2/queues", json={"queueName": "shared-name"}).status_code == 200
    r = alice(
        "POST",
        "/v2/topics/shared-name/endpoints",
        json={"endpoints": [{"url": f"{destination.url}/g"}]},
    )
    assert r.status_code == 200, r.text
    assert alice("POST", "/v2/flowControl/shared-name/pause").status_code == 200
    wait_until(lambda: alice("GET", "/v2/dlq").json()["messages"], what="alice's dead letter")
    ids["dlq"] = alice("GET", "/v2/dlq").json()["messages"][0]["dlqId"]
    return ids


def _alice_intact(alice: Client, ids: dict[str, str]) -> None:
    assert alice("GET", f"/v2/messages/{ids['message']}").status_code == 200
    assert alice("GET", f"/v2/dlq/{ids['dlq']}").status_code == 200
    assert alice("GET", "/v2/schedules/shared-name").json()["isPaused"] is False
    assert alice("GET", "/v2/queues/shared-name").status_code == 200
    assert alice("GET", "/v2/topics/shared-name").json()["endpoints"]
    assert alice("GET", "/v2/flowControl/shared-name").status_code == 200
    keys = alice("GET", "/v2/keys").json()
    assert keys == {"current": alice.user.current_signing_key, "next": alice.user.next_signing_key}
    logs = alice("GET", "/v2/logs", params={"messageId": ids["message"]}).json()["logs"]
    assert [row["state"] for row in logs] == ["CREATED"]


def test_users_see_and_touch_only_their_own_data(
    emulator: Emulator, destination: Destination
) -> None:
    alice = Client(emulator, emulator.create_user())
    bob = Client(emulator, emulator.create_user())
    try:
        _isolated(alice, bob, destination)
    finally:
        alice.http.close()
        bob.http.close()


def test_workflow_runs_waiters_and_webhooks_are_per_user(
    emulator: Emulator, destination: Destination
) -> None:
    alice = Client(emulator, emulator.create_user())
    bob = Client(emulator, emulator.create_user())
    run = {"Upstash-Workflow-RunId": "wfr_shared", "Upstash-Workflow-Init": "true"}
    wait = {"url": destination.url + "/wf", "step": {"stepId": 1, "stepName": "w"}}
    try:
        # Alice's run waits a day before its first delivery, and waits for an event.
        r = alice(
            "POST", f"/v2/publish/{destination.url}/wf", headers={**run, "Upstash-Delay": "1d"}
        )
        assert r.status_code == 200
        assert alice("POST", "/v2/wait/evt", headers=run, json=wait).status_code == 200

        assert bob("GET", "/v2/workflows/logs").json() == {"cursor": "", "runs": []}
        assert bob("GET", "/v2/workflows/runs/wfr_shared").status_code == 404
        assert bob("DELETE", "/v2/workflows/runs/wfr_shared").status_code == 404
        assert bob("DELETE", "/v2/workflows/runs").json() == {"cancelled": 0}
        assert bob("GET", "/v2/waiters/evt").json() == []
        assert bob("POST", "/v2/notify/evt").json() == []
        assert bob("POST", "/v2/notify/wfr_shared/evt").status_code == 404
        assert (
            bob(
                "POST", "/v2/wait/evt", headers=run | {"Upstash-Workflow-Init": "false"}, json=wait
            ).status_code
            == 400
        )
        append = {**run, "Upstash-Workflow-Init": "false"}
        assert bob("POST", f"/v2/publish/{destination.url}/wf", headers=append).status_code == 400
        hook = f"/v2/workflows/hooks/{bob.user.user_id}/wfr_shared/evt"
        assert httpx.post(emulator.url + hook).status_code == 404

        (alice_run,) = alice("GET", "/v2/workflows/logs").json()["runs"]
        assert alice_run["workflowState"] == "RUN_STARTED"
        assert len(alice("GET", "/v2/waiters/evt").json()) == 1
    finally:
        alice.http.close()
        bob.http.close()


def _isolated(alice: Client, bob: Client, destination: Destination) -> None:
    ids = _setup_alice(alice, destination)

    # Bob's reads show nothing of Alice's.
    assert bob("GET", f"/v2/messages/{ids['message']}").status_code == 404
    assert bob("GET", "/v2/dlq").json()["messages"] == []
    assert bob("GET", f"/v2/dlq/{ids['dlq']}").status_code == 404
    assert bob("GET", "/v2/logs").json()["logs"] == []
    assert bob("GET", "/v2/events", params={"messageId": ids["dead"]}).json()["events"] == []
    assert bob("GET", "/v2/schedules").json() == []
    assert bob("GET", "/v2/schedules/shared-name").status_code == 404
    assert bob("GET", "/v2/queues").json() == []
    assert bob("GET", "/v2/queues/shared-name").status_code == 404
    assert bob("GET", "/v2/topics").json() == []
    assert bob("GET", "/v2/topics/shared-name").status_code == 404
    assert bob("GET", "/v2/flowControl").json() == []
    assert bob("GET", "/v2/flowControl/shared-name").status_code == 404
    assert bob("GET", "/_emulator/messages").json()["messages"] == []
    assert bob("GET", "/_emulator/dlq").json()["messages"] == []
    assert bob("GET", "/_emulator/attempts").json()["attempts"] == []
    assert bob("GET", "/v2/keys").json()["current"] != alice.user.current_signing_key

    # Bob's writes cannot reach Alice's data, not even the bulk ones without a filter.
    assert bob("DELETE", f"/v2/messages/{ids['message']}").status_code == 404
    assert bob("DELETE", "/v2/messages", json={"messageIds": [ids["message"]]}).json() == {
        "cancelled": 0
    }
    assert bob("DELETE", "/v2/messages").json() == {"cancelled": 0}
    assert bob("DELETE", f"/v2/dlq/{ids['dlq']}").status_code == 404
    assert bob("POST", f"/v2/dlq/retry/{ids['dlq']}").status_code == 404
    assert bob("DELETE", "/v2/dlq").json()["deleted"] == 0
    assert bob("POST", "/v2/dlq/retry").json()["responses"] == []
    assert bob("PATCH", "/v2/schedules/shared-name/pause").status_code == 404
    assert bob("DELETE", "/v2/schedules/shared-name").status_code == 404
    assert bob("POST", "/v2/queues/shared-name/pause").status_code == 404
    bob("DELETE", "/v2/queues/shared-name")
    assert bob("PATCH", "/v2/topics/shared-name", json={"headers": {"X": "y"}}).status_code == 404
    bob("DELETE", "/v2/topics/shared-name")
    assert bob("POST", "/v2/publish/shared-name").status_code == 404
    bob("POST", "/v2/flowControl/shared-name/resume")
    assert bob("POST", f"/_emulator/run-now/{ids['message']}").status_code == 404
    bob("POST", "/v2/keys/rotate")

    # The same names and the same deduplication id make Bob's own, separate things.
    r = bob(
        "POST",
        f"/v2/publish/{destination.url}/later",
        headers={"Upstash-Delay": "1h", "Upstash-Deduplication-Id": "same"},
    )
    assert r.status_code == 200 and r.json()["messageId"] != ids["message"]
    assert bob("POST", "/v2/queues", json={"queueName": "shared-name"}).status_code == 200
    r = bob(
        "POST",
        f"/v2/schedules/{destination.url}/b",
        headers={"Upstash-Cron": "0 0 1 1 *", "Upstash-Schedule-Id": "shared-name"},
    )
    assert r.status_code == 200
    assert bob("PATCH", "/v2/schedules/shared-name/pause").status_code == 200

    _alice_intact(alice, ids)


# Binding -------------------------------------------------------------------------------------


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if int(hex_port, 16) == port and state == "0A":
                found.add(address)
    return found


def test_dev_server_listens_on_loopback_only_by_default() -> None:
    proc = EmulatorProcess()
    try:
        assert _listening_addresses(proc.port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        proc.stop()


# Signatures ----------------------------------------------------------------------------------

_keys = st.text(
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", min_size=28, max_size=28
)


def _receiver_accepts(token: str, keys: tuple[str, str], url: str, body: bytes) -> bool:
    try:
        Receiver(*keys).verify(signature=token, body=body.decode(), url=url)
    except SignatureError:
        return False
    return True


@given(
    key=_keys,
    other=_keys,
    text=st.text(max_size=40),
    flip=st.integers(min_value=0),
    path=st.text("abcdefghijklmnopqrstuvwxyz/-_", max_size=20),
)
@settings(max_examples=100, deadline=None)
def test_signatures_never_verify_with_a_wrong_key_or_tampered_input(
    key: str, other: str, text: str, flip: int, path: str
) -> None:
    now = int(time.time())
    body = text.encode()  # the official Receiver takes the body as text
    url = f"https://example.com/{path}"
    token = sign("sig_" + key, url, body, now)
    keys = ("sig_" + key, "sig_" + other)
    assert check_signature(token, keys, url, body, now).ok
    assert _receiver_accepts(token, keys, url, body)

    wrong = ("sig_" + other, "sig_" + other)
    if other != key:
        assert check_signature(token, wrong, url, body, now).failed_claim == "key"
        assert not _receiver_accepts(token, wrong, url, body)
    tampered = bytearray(body or b"\0")
    tampered[flip % len(tampered)] ^= 0x01
    assert check_signature(token, keys, url, bytes(tampered), now).failed_claim == "body"
    assert check_signature(token, keys, url + "x", body, now).failed_claim == "sub"
    # A token whose signature bytes were changed, or that claims no algorithm, is refused.
    head, claims, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[flip % len(raw)] ^= 0x01
    forged = f"{head}.{claims}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    assert check_signature(forged, keys, url, body, now).failed_claim == "key"
    unsigned = jwt.encode(jwt.decode(token, options={"verify_signature": False}), None, "none")
    assert check_signature(unsigned, keys, url, body, now).failed_claim == "key"
    assert not _receiver_accepts(unsigned, keys, url, body)


def test_a_delivery_verifies_with_its_users_keys_only(
    emulator: Emulator, destination: Destination
) -> None:
    alice, bob = emulator.create_user(), emulator.create_user()
    url = destination.url + "/signed"
    r = httpx.post(
        f"{emulator.url}/v2/publish/{url}",
        headers=auth(alice),
        content=b"secret",
    )
    assert r.status_code == 200
    (got,) = destination.wait(1, "/signed")
    token = got.headers["upstash-signature"]
    now = int(time.time())
    alice_keys = (alice.current_signing_key, alice.next_signing_key)
    bob_keys = (bob.current_signing_key, bob.next_signing_key)
    assert check_signature(token, alice_keys, url, b"secret", now).ok
    assert check_signature(token, bob_keys, url, b"secret", now).failed_claim == "key"
    assert check_signature(token, alice_keys, url, b"Secret", now).failed_claim == "body"
    assert not _receiver_accepts(token, bob_keys, url, b"secret")
