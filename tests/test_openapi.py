"""The emulator's own OpenAPI document at ``GET /v2/openapi.json``."""

from __future__ import annotations

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.api._operations import OPENAPI_PATH

from .helpers import api_routes, auth


def test_document_is_served_to_a_token_holder_only(emulator: Emulator) -> None:
    assert httpx.get(emulator.url + OPENAPI_PATH).status_code == 401
    r = httpx.get(emulator.url + OPENAPI_PATH, headers=auth(emulator))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "qstash-emulator"
    publish = doc["paths"]["/v2/publish/{destination}"]["post"]
    names = {p["name"] for p in publish["parameters"] if p["in"] == "header"}
    assert {"Upstash-Delay", "Upstash-Retries", "Upstash-Callback-Retries"} <= names
    assert "Upstash-Cron" not in names
    schedule = doc["paths"]["/v2/schedules/{scheduleId}"]["post"]
    assert "Upstash-Cron" in {p["name"] for p in schedule["parameters"]}
    assert publish["responses"]["4XX"] == {"$ref": "#/components/responses/Error"}


def test_the_tokenless_routes_are_documented_as_open(emulator: Emulator) -> None:
    r = httpx.get(emulator.url + OPENAPI_PATH, headers=auth(emulator))
    probe = r.json()["paths"]["/_emulator/health"]["get"]
    assert probe["security"] == []
    assert probe["tags"] == ["emulator"]
    schema = probe["responses"]["200"]["content"]["application/json"]["schema"]
    health = httpx.get(emulator.url + "/_emulator/health").json()
    assert sorted(schema["required"]) == sorted(health)
    # A run's webhook URL too (its path names the user and run); every other operation keeps
    # the document's token requirement.
    hook = "/v2/workflows/hooks/{userId}/{workflowRunId}/{eventId}"
    assert {op["security"] == [] for op in r.json()["paths"][hook].values()} == {True}
    assert all(
        "security" not in op
        for path, item in r.json()["paths"].items()
        for op in item.values()
        if path not in {"/_emulator/health", hook}
    )


def test_every_publish_header_is_in_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each header name the publish parser reads (a callback's options and the Workflow
    headers too) is a parameter of the publish operation, or of schedule creation for the
    schedule-only ones: a header added to the parser but not to the document fails here."""
    from qstash_emulator import Settings
    from qstash_emulator.api._operations import build_document
    from qstash_emulator.model import header_values as _headers
    from qstash_emulator.model.headers import parse_publish

    asked: set[str] = set()
    get = _headers.GivenHeaders.get

    def spy(self: _headers.GivenHeaders, name: str) -> str | None:
        asked.add(name)
        return get(self, name)

    monkeypatch.setattr(_headers.GivenHeaders, "get", spy)
    url = "http://127.0.0.1:9/x"
    items = [
        ("Upstash-Method", "PUT"),
        ("Upstash-Workflow-RunId", "wfr_1"),
        ("Upstash-Workflow-Init", "true"),
        *[(f"Upstash-{p}", url) for p in ("Callback", "Failure-Callback")],
        *[(f"Upstash-Callback-{p}", url) for p in ("Failure-Callback", "Workflow-Url")],
        ("Upstash-Callback-Workflow-RunId", "wfr_1"),
        ("Upstash-Callback-Flow-Control-Key", "k"),
        ("Upstash-Callback-Flow-Control-Value", "rate=1"),
    ]
    parse_publish(items, Settings(), schedule=True)
    doc = build_document(api_routes(), "test")

    def header_names(path: str) -> set[str]:
        params = doc["paths"][path]["post"]["parameters"]
        return {p["name"].lower() for p in params if p["in"] == "header"}

    publish = header_names("/v2/publish/{destination}")
    schedule = header_names("/v2/schedules/{scheduleId}")
    assert len(asked) > 30
    assert sorted(asked - schedule) == []
    assert sorted(asked - publish) == ["upstash-cron", "upstash-queue-name", "upstash-schedule-id"]
