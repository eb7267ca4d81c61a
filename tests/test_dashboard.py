"""The dashboard's routes over HTTP: the page, its safety (Host check against DNS rebinding, no
CORS, strict headers, no user list off loopback), live rows, and paging for large states."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from qstash_emulator import DEFAULT_USERS, Emulator, Settings
from qstash_emulator.server.app import create_app
from qstash_emulator.server.hosts import host_allowed
from qstash_emulator.server.runtime import Runtime

from .helpers import Destination, add_delayed, api, auth, sdk, wait_until

TOKEN = DEFAULT_USERS[0].token
AUTH = auth(TOKEN)
PAGES = ["/", "/_dashboard/static/app.js", "/_dashboard/static/style.css", "/_dashboard/api/users"]


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def http(server: Emulator) -> Iterator[httpx.Client]:
    server.reset()
    with api(server, anonymous=True) as client:
        yield client


def test_the_page_and_its_files_are_served(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/_dashboard/static/app.js">' in page.text
    script = http.get("/_dashboard/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert http.get("/_dashboard/static/style.css").status_code == 200
    assert http.get("/_dashboard/static/nothing.js").status_code == 404
    wrong = http.post("/")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method POST not allowed on /"})


def test_every_dashboard_answer_forbids_framing_and_foreign_content(http: httpx.Client) -> None:
    for path in PAGES:
        headers = http.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp, path
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "0x7f"])
def test_a_foreign_host_is_refused_which_stops_dns_rebinding(http: httpx.Client, host: str) -> None:
    for path in PAGES:
        r = http.get(path, headers={"Host": host})
        assert r.status_code == 403, (path, r.text)
        assert "the dashboard answers only on the addresses it serves on" in r.json()["error"]
        assert TOKEN not in r.text
    # The API too: a browser sends no Sec-Fetch-* header to plain http on a rebound name.
    assert http.get("/v2/keys", headers={"Host": host, **AUTH}).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"])
def test_loopback_hosts_are_served(http: httpx.Client, server: Emulator, host: str) -> None:
    r = http.get("/_dashboard/api/users", headers={"Host": f"{host}:{server.port}"})
    assert r.status_code == 200


def test_host_rule() -> None:
    assert host_allowed("127.0.0.1:8080", "127.0.0.1")
    assert host_allowed("LOCALHOST:8080", "127.0.0.1")
    assert host_allowed("[::1]:8080", "::1")
    assert host_allowed("192.168.1.20:8080", "0.0.0.0")  # an IP literal cannot be rebound
    assert host_allowed("devbox:8080", "devbox")  # the name given to --host
    assert not host_allowed("192.168.1.20:8080", "127.0.0.1")
    assert not host_allowed("devbox:8080", "0.0.0.0")
    assert not host_allowed("attacker.example", "0.0.0.0")
    assert not host_allowed("", "127.0.0.1")


def test_no_cors_on_the_dashboard_or_the_api(http: httpx.Client) -> None:
    origin = {"Origin": "http://attacker.example"}
    for path in ["/_dashboard/api/users", "/_dashboard/api/stream", "/v2/dlq/retry/x", "/"]:
        preflight = http.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code >= 400, path
        assert not any(h.startswith("access-control-") for h in preflight.headers), path
    users = http.get("/_dashboard/api/users", headers=origin)
    assert not any(h.startswith("access-control-") for h in users.headers)


def test_users_are_listed_with_their_tokens_on_loopback(http: httpx.Client) -> None:
    users = http.get("/_dashboard/api/users").json()["users"]
    assert users == [{"userId": u.user_id, "token": u.token} for u in DEFAULT_USERS]


def test_off_loopback_the_page_gets_no_users_and_asks_for_a_token() -> None:
    # The app alone, in process: nothing is bound to 0.0.0.0.
    app = create_app(Runtime(Settings(host="0.0.0.0", port=0)))

    async def check() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://192.168.1.20:8080"
        ) as client:
            r = await client.get("/_dashboard/api/users")
            assert r.json()["users"] is None
            assert "enter a token" in r.json()["message"]
            assert TOKEN not in r.text
            me = await client.get("/_dashboard/api/me", headers=AUTH)
            assert me.json() == {"userId": "defaultUser", "readonly": False}
            assert (await client.get("/_dashboard/api/me")).status_code == 401
            evil = await client.get("/", headers={"Host": "evil.example"})
            assert evil.status_code == 403

    asyncio.run(check())


def test_stream_wants_a_token(http: httpx.Client) -> None:
    r = http.get("/_dashboard/api/stream")
    assert r.status_code == 401
    r = http.get("/_dashboard/api/stream", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_stream_sends_the_callers_log_rows_and_no_one_elses(
    server: Emulator, http: httpx.Client, destination: Destination
) -> None:
    batches: list[dict[str, object]] = []
    other = DEFAULT_USERS[1]

    def read() -> None:
        with httpx.stream("GET", f"{server.url}/_dashboard/api/stream", headers=AUTH) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    batches.append(httpx.Response(200, content=line[6:]).json())
                    if any(row["state"] == "DELIVERED" for b in batches for row in b["rows"]):  # type: ignore[attr-defined]
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: batches, 5, "the stream's first (empty) batch")
    assert batches[0] == {"rows": []}
    with sdk(server, other.token) as theirs:
        theirs.message.publish(url=f"{destination.url}/theirs", body="x")
    with sdk(server) as client:
        mine = client.message.publish(url=f"{destination.url}/mine", body="secret")
    reader.join(10)
    assert not reader.is_alive()
    rows = [row for b in batches for row in b["rows"]]  # type: ignore[attr-defined]
    assert [r["state"] for r in rows] == ["CREATED", "ACTIVE", "DELIVERED"]
    assert {r["messageId"] for r in rows} == {mine.message_id}
    # Slim rows: no headers or bodies go out on the stream.
    assert set(rows[2]) == {"time", "messageId", "state", "url", "method", "responseStatus"}
    assert rows[2]["responseStatus"] == 200
    # Nobody listens once the page is gone: the store's writes pay nothing for it.
    # Internal: the store's listeners have no public surface.
    wait_until(lambda: not server.runtime.store.row_listeners, 5, "the stream to unsubscribe")


def test_attempts_say_whether_the_signature_verifies(
    server: Emulator, http: httpx.Client, destination: Destination
) -> None:
    with sdk(server) as client:
        sent = client.message.publish(url=f"{destination.url}/signed", body="x")
    destination.wait(1, "/signed")
    wait_until(lambda: server.attempts, 5, "the attempt")
    (attempt,) = http.get(
        "/_emulator/attempts", params={"messageId": sent.message_id}, headers=AUTH
    ).json()["attempts"]
    assert attempt["signature"] == {"valid": True, "key": "current"}
    # A rotation drops the key it was signed with: receivers would now refuse it.
    http.post("/v2/keys/rotate", headers=AUTH).raise_for_status()
    (attempt,) = http.get(
        "/_emulator/attempts", params={"messageId": sent.message_id}, headers=AUTH
    ).json()["attempts"]
    assert attempt["signature"] == {
        "valid": False,
        "failedClaim": "key",
        "reason": "signed with neither the current nor the next key",
    }


def test_messages_page_with_total_and_counts_over_10000(
    server: Emulator, http: httpx.Client
) -> None:
    server.call(add_delayed(server, 10_000))
    r = http.get("/_emulator/messages", params={"count": 50, "offset": 9_980}, headers=AUTH)
    body = r.json()
    assert body["total"] == 10_000
    assert body["counts"] == {
        "pending": 0,
        "delayed": 10_000,
        "retrying": 0,
        "in_flight": 0,
        "queued": 0,
    }
    assert [m["messageId"] for m in body["messages"]] == [
        f"msg_{n:05d}" for n in range(9_980, 10_000)
    ]
    assert r.elapsed.total_seconds() < 3
    r = http.get(
        "/_emulator/messages", params={"count": 5, "state": "pending"}, headers=AUTH
    ).json()
    assert (r["messages"], r["total"]) == ([], 0)
    bad = http.get("/_emulator/messages", params={"count": 0}, headers=AUTH)
    assert bad.status_code == 400 and "count" in bad.json()["error"]
