"""Browser requests from other origins, or naming a rebound host, never reach the API; SDKs
and other clients (no ``Sec-Fetch-*`` headers) are untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator

from .chromium import MARKS, REBOUND
from .helpers import api, auth


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def http(server: Emulator) -> Iterator[httpx.Client]:
    server.reset()
    with api(server, anonymous=True, timeout=10) as client:
        yield client


def delayed_message(http: httpx.Client, token: str) -> str:
    answer = http.post(
        "/v2/publish/http://127.0.0.1:9/later",
        headers={**auth(token), "Upstash-Delay": "1h"},
        content=b"x",
    )
    assert answer.status_code == 200, answer.text
    message_id: str = answer.json()["messageId"]
    return message_id


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_form_post_from_another_origin_changes_nothing(
    http: httpx.Client, server: Emulator, site: str
) -> None:
    message_id = delayed_message(http, server.token)
    # What a hidden form on another page sends: the token in the query, no Authorization.
    answer = http.request(
        "DELETE",
        f"/v2/messages/{message_id}?qstash_token={server.token}",
        headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate"},
    )
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "browser requests from other origins are refused: a page elsewhere may be "
        f"using the emulator's well-known token (Sec-Fetch-Site: {site})"
    }
    still = http.get(f"/v2/messages/{message_id}?qstash_token={server.token}")
    assert still.status_code == 200
    assert still.json()["messageId"] == message_id


def test_a_browser_request_naming_a_rebound_host_is_refused(
    http: httpx.Client, server: Emulator
) -> None:
    answer = http.get(
        "/v2/keys",
        headers={
            "Host": f"rebound.test:{server.port}",
            "Sec-Fetch-Site": "same-origin",
            **auth(server),
        },
    )
    assert answer.status_code == 403
    assert answer.json() == {"error": refusal(f"rebound.test:{server.port}")}


def refusal(host: str) -> str:
    return (
        f"the API answers only on the addresses it serves on, not Host {host!r} (a web page "
        "may be trying DNS rebinding); reach it as 127.0.0.1 or localhost, or add the name "
        "with --allowed-hosts"
    )


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_the_emulators_own_pages_and_typed_addresses_pass(
    http: httpx.Client, server: Emulator, site: str
) -> None:
    answer = http.get(f"/v2/keys?qstash_token={server.token}", headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("host", ["evil.example", "host.docker.internal:8080", "0x7f", ""])
def test_any_client_naming_a_foreign_host_is_refused(
    http: httpx.Client, server: Emulator, host: str
) -> None:
    # A browser sends no Sec-Fetch-* header to plain http on a rebound name, so the Host
    # decides for every client; a user who reaches the emulator by another name lists it.
    for method, path in [("GET", "/v2/keys"), ("GET", "/v2/dlq"), ("GET", "/_emulator/logs")]:
        answer = http.request(method, path, headers={"Host": host, **auth(server)})
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json() == {"error": refusal(host)}
        assert server.token not in answer.text


def test_each_host_is_judged_alike_however_many_names_came_before(
    http: httpx.Client, server: Emulator
) -> None:
    # The guard remembers its verdicts per Host, a bounded number of them: more names than it
    # keeps, then the first ones again, get the same answers.
    creds = auth(server)
    hosts = [f"rebound-{n}.example" for n in range(300)]
    for host in [*hosts, *hosts[:3], "localhost:8080", "127.0.0.1", hosts[0]]:
        answer = http.get("/v2/keys", headers={"Host": host, **creds})
        want = 200 if host in ("localhost:8080", "127.0.0.1") else 403
        assert answer.status_code == want, (host, answer.text)


def test_a_name_given_to_allowed_hosts_is_served() -> None:
    # A service name in docker compose, a tunnel's name.
    with Emulator(allowed_hosts=("qstash", "abc.trycloudflare.com")) as emu:
        creds = auth(emu)
        with api(emu, anonymous=True, timeout=10) as client:
            for host in ["qstash:8080", "QStash", "abc.trycloudflare.com"]:
                answer = client.get("/v2/keys", headers={"Host": host, **creds})
                assert answer.status_code == 200, (host, answer.text)
                assert client.get("/_dashboard/api/me", headers={"Host": host, **creds}).json()
            assert client.get("/v2/keys", headers={"Host": "other", **creds}).status_code == 403


def test_webhook_urls_stay_open_to_other_origins(http: httpx.Client) -> None:
    answer = http.post(
        "/v2/workflows/hooks/defaultUser/wfr_none/evt_none",
        headers={"Sec-Fetch-Site": "cross-site"},
        content=b"{}",
    )
    assert answer.status_code != 403
    by_another_name = http.post(
        "/v2/workflows/hooks/defaultUser/wfr_none/evt_none",
        headers={"Host": "tunnel.example"},
        content=b"{}",
    )
    assert by_another_name.status_code == 404, by_another_name.text


@MARKS[0]
@MARKS[1]
def test_a_page_on_a_rebound_name_cannot_use_the_api(
    browser: Any, http: httpx.Client, server: Emulator
) -> None:
    # The attacker's name now resolves to 127.0.0.1: a script of its page is same-origin with
    # the emulator, and Chromium sends no Sec-Fetch-* header to plain http on such a name.
    browser.get(f"http://{REBOUND}:{server.port}/v2/keys")
    script = f"""
    const done = arguments[arguments.length - 1];
    const auth = {{Authorization: "Bearer {server.token}"}};
    const calls = {{
      keys: () => fetch("/v2/keys", {{headers: auth}}),
      dlq: () => fetch("/v2/dlq", {{headers: auth}}),
      tokenInQuery: () => fetch("/v2/keys?qstash_token={server.token}"),
      publish: () => fetch("/v2/publish/http://127.0.0.1:9/x", {{
        method: "POST", headers: {{...auth, "Upstash-Delay": "1h"}}, body: "x"}}),
    }};
    (async () => {{
      const out = {{}};
      for (const [name, call] of Object.entries(calls)) {{
        const r = await call();
        out[name] = [r.status, await r.text()];
      }}
      done(out);
    }})().catch(e => done(String(e)));
    """
    out = browser.execute_async_script(script)
    assert isinstance(out, dict), out
    for name, (status, text) in out.items():
        assert status == 403, (name, text)
        assert json.loads(text) == {"error": refusal(f"{REBOUND}:{server.port}")}
    logs = http.get("/v2/logs", headers=auth(server)).json()
    assert logs["events"] == []  # nothing was published
    browser.get("about:blank")
    browser.get_log("browser")  # the 403s are logged by the browser, as they should be
