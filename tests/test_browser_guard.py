"""Browser requests from other origins, or naming a rebound host, never reach the API; SDKs
and other clients (no ``Sec-Fetch-*`` headers) are untouched."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from qstash_emulator import Emulator


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def http(server: Emulator) -> Iterator[httpx.Client]:
    server.reset()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def delayed_message(http: httpx.Client, token: str) -> str:
    answer = http.post(
        "/v2/publish/http://127.0.0.1:9/later",
        headers={"Authorization": f"Bearer {token}", "Upstash-Delay": "1h"},
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
            "Authorization": f"Bearer {server.token}",
        },
    )
    assert answer.status_code == 403
    assert answer.json() == {
        "error": f"browser requests must name an address the emulator serves on, not Host "
        f"'rebound.test:{server.port}' (a web page may be trying DNS rebinding)"
    }


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_the_emulators_own_pages_and_typed_addresses_pass(
    http: httpx.Client, server: Emulator, site: str
) -> None:
    answer = http.get(f"/v2/keys?qstash_token={server.token}", headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 200, answer.text


def test_clients_without_fetch_metadata_pass_whatever_host_they_name(
    http: httpx.Client, server: Emulator
) -> None:
    # An SDK in a container reaching the host's emulator by another name.
    answer = http.get(
        "/v2/keys",
        headers={"Host": "host.docker.internal:8080", "Authorization": f"Bearer {server.token}"},
    )
    assert answer.status_code == 200, answer.text


def test_webhook_urls_stay_open_to_other_origins(http: httpx.Client) -> None:
    answer = http.post(
        "/v2/workflows/hooks/defaultUser/wfr_none/evt_none",
        headers={"Sec-Fetch-Site": "cross-site"},
        content=b"{}",
    )
    assert answer.status_code != 403
