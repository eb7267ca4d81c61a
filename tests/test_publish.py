"""Publishing through the official Python SDK, and what the destination receives.

The rules: docs/behaviour.md#delivery.
"""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import jwt
import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError

from qstash_emulator import Emulator

from .helpers import Destination, auth, sdk


def test_publish_json_reaches_destination_signed(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    url = destination.url + "/hook?a=1"
    res = client.message.publish_json(url=url, body={"hello": "world"}, headers={"X-Trace": "t1"})
    assert res.message_id.startswith("msg_")
    (got,) = destination.wait(1)
    assert got.method == "POST"
    assert got.path == "/hook"
    assert got.query == "a=1"
    assert got.body == b'{"hello": "world"}'
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-trace"] == "t1"
    assert got.headers["upstash-message-id"] == res.message_id
    assert got.headers["upstash-retried"] == "0"
    assert got.headers["user-agent"] == "Upstash-QStash"
    assert got.headers["upstash-caller-ip"] == "127.0.0.1"
    assert "upstash-retries" not in got.headers and "authorization" not in got.headers
    receiver = Receiver(emulator.current_signing_key, emulator.next_signing_key)
    receiver.verify(signature=got.headers["upstash-signature"], body=got.text, url=url)


def test_signature_claims_match_production(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    client.message.publish(url=destination.url + "/s", body="")
    (got,) = destination.wait(1)
    token = got.headers["upstash-signature"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        token, emulator.current_signing_key, algorithms=["HS256"], options={"verify_nbf": False}
    )
    assert set(claims) == {"aud", "body", "exp", "iat", "iss", "jti", "nbf", "sub"}
    assert claims["aud"] == "" and claims["iss"] == "Upstash"
    assert claims["sub"] == destination.url + "/s"
    assert claims["body"] == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
    assert claims["nbf"] == -62135596800
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"].startswith("jwt_") and len(claims["jti"]) == 32


def test_method_and_raw_body_are_kept(client: QStash, destination: Destination) -> None:
    body = bytes(range(256))
    client.message.publish(
        url=destination.url + "/put",
        body=body,
        method="PUT",
        content_type="application/octet-stream",
    )
    (got,) = destination.wait(1)
    assert got.method == "PUT"
    assert got.body == body
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()
    assert (
        jwt.decode(got.headers["upstash-signature"], options={"verify_signature": False})["body"]
        == digest
    )


def test_publish_response_shape(emulator: Emulator, destination: Destination) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/x",
        headers=auth(emulator),
        content=b"1",
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"messageId", "url"}
    assert r.json()["url"] == destination.url + "/x"
    destination.wait(1, "/x")


def test_token_in_query_string_and_config_in_query(
    emulator: Emulator, destination: Destination
) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/q?keep=1&qstash_token={emulator.token}"
        "&upstash-method=PATCH&upstash-forward-x-from-query=yes",
        content=b"x",
    )
    assert r.status_code == 200, r.text
    (got,) = destination.wait(1, "/q")
    assert got.method == "PATCH"
    assert got.query == "keep=1"
    assert got.headers["x-from-query"] == "yes"


def test_percent_encoded_and_collapsed_destinations(
    emulator: Emulator, destination: Destination
) -> None:
    creds = auth(emulator)
    encoded = httpx.URL(destination.url + "/enc?x=1")
    quoted = str(encoded).replace(":", "%3A").replace("/", "%2F").replace("?", "%3F")
    quoted = quoted.replace("=", "%3D")
    r1 = httpx.post(f"{emulator.url}/v2/publish/{quoted}", headers=creds)
    assert r1.status_code == 200, r1.text
    assert r1.json()["url"] == destination.url + "/enc?x=1"
    collapsed = destination.url.replace("http://", "http:/") + "/col"
    r2 = httpx.post(f"{emulator.url}/v2/publish/{collapsed}", headers=creds)
    assert r2.json()["url"] == destination.url + "/col"
    paths = sorted(r.path for r in destination.wait(2))
    assert paths == ["/col", "/enc"]


def test_header_forward_sends_all_incoming_headers(
    emulator: Emulator, destination: Destination
) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/hf",
        headers={
            **auth(emulator),
            "Upstash-Header-Forward": "true",
            "X-Webhook": "w",
            "Upstash-Retries": "0",
        },
    )
    assert r.status_code == 200
    (got,) = destination.wait(1)
    assert got.headers["x-webhook"] == "w"
    assert "upstash-retries" not in got.headers
    assert got.headers["upstash-signature"]


def test_bad_token_is_401(emulator: Emulator, destination: Destination) -> None:
    with sdk(emulator, "nope") as bad, pytest.raises(QStashError, match="401"):
        bad.message.publish(url=destination.url, body="x")
    r = httpx.post(f"{emulator.url}/v2/publish/{destination.url}")
    assert r.status_code == 401
    assert r.json() == {"error": r.json()["error"]} and "token" in r.json()["error"]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Upstash-Delay": "soon"}, "Upstash-Delay"),
        ({"Upstash-Delay": "-5s"}, "Upstash-Delay"),
        ({"Upstash-Retries": "-1"}, "Upstash-Retries"),
        ({"Upstash-Retries": "9999"}, "Upstash-Retries"),
        ({"Upstash-Not-Before": "tomorrow"}, "Upstash-Not-Before"),
        ({"Upstash-Method": "FETCH"}, "Upstash-Method"),
        ({"Upstash-Timeout": "0s"}, "Upstash-Timeout"),
        ({"Upstash-Retry-Delay": "__import__('os').system('true')"}, "Upstash-Retry-Delay"),
        ({"Upstash-Retry-Delay": "1000 / 0"}, "Upstash-Retry-Delay"),
        ({"Upstash-Deduplication-Id": "a:b"}, "Upstash-Deduplication-Id"),
        ({"Upstash-Callback": "ftp://x"}, "Upstash-Callback"),
        ({"Upstash-Flow-Control-Key": "k"}, "Upstash-Flow-Control-Value"),
        (
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "speed=3"},
            "Upstash-Flow-Control-Value",
        ),
        ({"Upstash-Redact-Fields": "password"}, "Upstash-Redact-Fields"),
        ({"Upstash-Content-Based-Deduplication": "maybe"}, "Upstash-Content-Based-Deduplication"),
    ],
)
def test_bad_headers_are_400_naming_the_header(
    emulator: Emulator, destination: Destination, headers: dict[str, str], field: str
) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}",
        headers={**auth(emulator), **headers},
    )
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]


def test_destination_without_scheme_is_not_found_group(emulator: Emulator) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/example.com/hook",
        headers=auth(emulator),
    )
    assert r.status_code == 404
    assert "example.com/hook" in r.json()["error"]


def test_body_over_size_limit_is_rejected() -> None:
    with Emulator(max_message_size=10) as small:
        r = httpx.post(
            f"{small.url}/v2/publish/http://127.0.0.1:9/x",
            headers=auth(small),
            content=b"x" * 11,
        )
        assert r.status_code == 400
        assert "body" in r.json()["error"] and "10 bytes" in r.json()["error"]


def test_strict_destinations_refuse_loopback_like_production() -> None:
    with Emulator(strict_destinations=True) as strict:
        creds = auth(strict)
        r = httpx.post(f"{strict.url}/v2/publish/http://127.0.0.1:3000/x", headers=creds)
        assert r.status_code == 400
        assert r.json()["error"] == (
            "invalid destination: endpoint resolves to a loopback address: 127.0.0.1"
        )
        r = httpx.post(f"{strict.url}/v2/publish/http://10.1.2.3/x", headers=creds)
        assert "private address" in r.json()["error"]
        # Delayed a day so that nothing is ever sent to that public address, whatever happens.
        r = httpx.post(
            f"{strict.url}/v2/publish/http://93.184.215.14/x",
            headers={**creds, "Upstash-Callback": "http://localhost:1/cb", "Upstash-Delay": "1d"},
        )
        assert r.status_code == 400 and "Upstash-Callback" in r.json()["error"]


def test_forwarded_framing_headers_never_reach_the_wire(
    emulator: Emulator, destination: Destination
) -> None:
    # Clients that re-forward every header they received (the Workflow SDKs) send these.
    body = b'{"a": 1, "padding": "0123456789"}'
    url = f"{destination.url}/framing"
    r = httpx.post(
        f"{emulator.url}/v2/publish/{url}",
        content=body,
        headers={
            **auth(emulator),
            "Content-Type": "application/json",
            "Upstash-Forward-Content-Type": "text/plain",
            "Upstash-Forward-Content-Length": "3",
            "Upstash-Forward-Host": "elsewhere.example",
            "Upstash-Forward-Connection": "close",
            "Upstash-Forward-Transfer-Encoding": "chunked",
            "Upstash-Forward-Keep-Alive": "timeout=5",
            "Upstash-Forward-Upgrade": "websocket",
            "Upstash-Forward-Te": "trailers",
            "Upstash-Forward-Trailer": "X-Sum",
            "Upstash-Forward-Proxy-Authorization": "Basic eA==",
            "Upstash-Forward-Upstash-Signature": "forged",
            "Upstash-Forward-X-Kept": "k",
        },
    )
    assert r.status_code == 200, r.text
    (got,) = destination.wait(1)
    assert got.body == body
    assert got.headers["content-length"] == str(len(body))
    assert got.headers["host"] == f"127.0.0.1:{destination.port}"
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["x-kept"] == "k"
    assert got.headers.get("connection") != "close"
    assert not {"transfer-encoding", "keep-alive", "upgrade", "te", "trailer"} & set(got.headers)
    assert "proxy-authorization" not in got.headers
    receiver = Receiver(emulator.current_signing_key, emulator.next_signing_key)
    receiver.verify(signature=got.headers["upstash-signature"], body=got.text, url=url)
    message = httpx.get(
        f"{emulator.url}/v2/messages/{r.json()['messageId']}",
        headers=auth(emulator),
    )
    assert message.status_code == 200, message.text
    header = message.json()["header"]
    assert header["Content-Type"] == ["text/plain"]
    assert not {"Content-Length", "Host", "Connection", "Proxy-Authorization"} & set(header)


def test_callback_and_forward_all_skip_framing_headers(
    emulator: Emulator, destination: Destination
) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/hf-framing",
        content=b"twelve bytes",
        headers={
            **auth(emulator),
            "Upstash-Header-Forward": "true",
            "Proxy-Connection": "keep-alive",
            "X-Webhook": "w",
            "Upstash-Callback": f"{destination.url}/cb-framing",
            "Upstash-Callback-Forward-Content-Length": "2",
            "Upstash-Callback-Forward-Host": "elsewhere.example",
            "Upstash-Callback-Forward-X-Cb": "c",
        },
    )
    assert r.status_code == 200, r.text
    (got,) = destination.wait(1, "/hf-framing")
    assert got.body == b"twelve bytes" and got.headers["content-length"] == "12"
    assert got.headers["x-webhook"] == "w"
    assert "proxy-connection" not in got.headers
    (callback,) = destination.wait(1, "/cb-framing")
    assert callback.headers["x-cb"] == "c"
    assert callback.headers["host"] == f"127.0.0.1:{destination.port}"
    assert callback.headers["content-length"] == str(len(callback.body))
    assert json.loads(callback.body)["status"] == 200


def test_a_forwarded_header_in_the_query_that_cannot_be_sent_is_400(
    emulator: Emulator, destination: Destination
) -> None:
    creds = auth(emulator)
    for query, error in [
        ("upstash-forward-x-a=1%0D%0A2", "invalid Upstash-Forward-X-A: the value of 'x-a'"),
        ("upstash-callback-forward-x%0Ab=1", "invalid 'upstash-callback-forward-x\\nb'"),
    ]:
        r = httpx.post(f"{emulator.url}/v2/publish/{destination.url}/x?{query}", headers=creds)
        assert r.status_code == 400, r.text
        assert r.json()["error"].startswith(error)
