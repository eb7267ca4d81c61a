"""Routing the SDK's calls to the production URL into the emulator, for code that hard-codes it.

respx patches httpx for the test: requests to ``https://qstash.upstash.io`` are replayed
against the emulator; every other request passes through untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import respx

__all__ = ["PRODUCTION_URL", "intercept"]

PRODUCTION_URL = "https://qstash.upstash.io"


def intercept(
    base_url: str, target: str, token: str, known: Callable[[str], bool]
) -> Callable[[], None]:
    """Send httpx calls for ``base_url`` to ``target``; returns what stops it.

    A bearer token the emulator does not ``known`` is replaced by ``token``, so a client built
    before the test (at import time, without the test's environment) still works.
    """

    def forward(request: httpx.Request) -> httpx.Response:
        headers = dict(request.headers)
        scheme, _, sent = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not known(sent):
            headers["authorization"] = f"Bearer {token}"
        headers.pop("host", None)
        url = target + request.url.raw_path.decode("ascii")
        with httpx.Client(timeout=30) as inner:
            answer = inner.request(request.method, url, headers=headers, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=False)
    router.route(url__startswith=base_url.rstrip("/")).mock(side_effect=forward)
    router.route().pass_through()
    router.start()
    return router.stop
