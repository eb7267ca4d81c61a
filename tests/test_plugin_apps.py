"""In-process delivery into ASGI and WSGI apps, rewriting, production-URL interception, faults."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_mounted_asgi_and_wsgi_apps_receive_signed_deliveries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        from fastapi import FastAPI, Request, Response
        from flask import Flask, request as flask_request
        from qstash import Receiver

        def verify(signature, body, url):
            Receiver(
                os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
            ).verify(signature=signature, body=body, url=url)

        api = FastAPI()
        got = []

        @api.post("/hooks/order")
        async def order(request: Request):
            body = (await request.body()).decode()
            verify(request.headers["upstash-signature"], body, "https://shop.example.com/hooks/order")
            got.append(("fastapi", body))
            return Response(status_code=204)

        web = Flask(__name__)

        @web.post("/hooks/mail")
        def mail():
            body = flask_request.get_data(as_text=True)
            verify(flask_request.headers["Upstash-Signature"], body, "https://mail.example.com/hooks/mail")
            got.append(("flask", body))
            return "sent", 200

        def test_apps(qstash):
            qstash.mount("https://shop.example.com", api)
            qstash.mount("https://mail.example.com", web)
            client = qstash.client()
            client.message.publish_json(url="https://shop.example.com/hooks/order", body={"o": 1})
            client.message.publish_json(url="https://mail.example.com/hooks/mail", body={"m": 2})
            qstash.run_until_idle()
            assert sorted(got) == [("fastapi", '{"o": 1}'), ("flask", '{"m": 2}')]
            qstash.assert_delivered(path="/hooks/order", status=204)
            qstash.assert_delivered(path="/hooks/mail", status=200)

        def test_app_that_raises_is_a_500(qstash):
            broken = FastAPI()

            @broken.post("/x")
            async def explode():
                raise RuntimeError("boom")

            qstash.mount("https://broken.example.com", broken, wsgi=False)
            qstash.client().message.publish_json(
                url="https://broken.example.com/x", body={}, retries=0
            )
            qstash.run_until_idle()
            assert qstash.deliveries.last.status == 500
            qstash.assert_dead_lettered(path="/x")
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_rewrite_to_a_real_local_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                seen.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        def test_rewrite(qstash):
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            local = f"http://127.0.0.1:{server.server_port}"
            try:
                qstash.rewrite("https://api.myapp.com", local)
                qstash.client().message.publish(url="https://api.myapp.com/jobs?x=1", body="hi")
                delivery = qstash.wait_for(path="/jobs")
            finally:
                server.shutdown()
                server.server_close()
            assert seen == [("/jobs?x=1", b"hi")]
            assert delivery.url == "https://api.myapp.com/jobs?x=1"
            assert delivery.destination_url == local + "/jobs?x=1"
            assert delivery.check_signature(url="https://api.myapp.com/jobs?x=1").ok
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_production_url_is_routed_into_the_emulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import httpx
        import pytest
        from qstash import AsyncQStash, QStash

        # Built at import time, before any fixture: hard-coded URL, no valid token.
        HARDCODED = QStash("not-a-real-token", base_url="https://qstash.upstash.io")


        @pytest.fixture(autouse=True, scope="module")
        def close_the_client():
            yield
            HARDCODED.http._client.close()

        @pytest.mark.qstash(intercept_production=True)
        def test_sync_client(qstash):
            hook = qstash.endpoint("/prod")
            res = HARDCODED.message.publish_json(url=hook.url, body={"p": 1})
            assert qstash.wait_for(url=hook.url).message_id == res.message_id
            # Other hosts are not intercepted.
            with pytest.raises(httpx.ConnectError):
                httpx.get("http://127.0.0.1:1/")

        def test_async_client(qstash):
            qstash.intercept_production()
            hook = qstash.endpoint("/aprod")

            async def publish():
                client = AsyncQStash(qstash.token, base_url="https://qstash.upstash.io")
                try:
                    return await client.message.publish_json(url=hook.url, body={})
                finally:
                    await client.http._client.aclose()

            res = asyncio.run(publish())
            assert qstash.wait_for(url=hook.url).message_id == res.message_id

        def test_not_intercepted_without_asking(qstash):
            with pytest.raises(httpx.ConnectError):
                HARDCODED.http._client.get("https://qstash.upstash.io/v2/dlq", timeout=2)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=3)


def test_api_faults_reach_the_publisher(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from qstash.errors import (
            DailyMessageLimitExceededError, QStashError, RateLimitExceededError,
        )

        def test_faults(qstash):
            client = qstash.client(retry=False)
            hook = qstash.endpoint("/f")
            qstash.fail_api("daily", path="/v2/publish")
            with pytest.raises(DailyMessageLimitExceededError):
                client.message.publish_json(url=hook.url, body={})
            qstash.fail_api("burst", path="/v2/publish")
            with pytest.raises(RateLimitExceededError):
                client.message.publish_json(url=hook.url, body={})
            qstash.fail_api(status=503, path="/v2/publish", times=2)
            for _ in range(2):
                with pytest.raises(QStashError, match="503"):
                    client.message.publish_json(url=hook.url, body={})
            qstash.fail_api("drop", method="POST")
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.message.publish_json(url=hook.url, body={})
            client.message.publish_json(url=hook.url, body={})
            qstash.assert_delivered(url=hook.url, count=1)

        def test_faults_belong_to_one_test(qstash):
            hook = qstash.endpoint("/ok")
            qstash.client(retry=False).message.publish_json(url=hook.url, body={})
            qstash.wait_for(url=hook.url)
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=2)


def test_redirects_are_followed_on_every_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from fastapi import FastAPI, Request, Response
        from flask import Flask, request as flask_request
        from qstash_emulator.pytest import reply

        api = FastAPI()  # redirect_slashes: /hooks/restock -> 307 /hooks/restock/

        @api.post("/hooks/restock/")
        async def restock(request: Request):
            return Response(await request.body(), status_code=201)

        web = Flask(__name__)  # strict slashes: /hooks/mail -> 308 /hooks/mail/

        @web.post("/hooks/mail/")
        def mail():
            return flask_request.get_data(), 202

        class Local(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/old":
                    self.send_response(308)
                    self.send_header("Location", "/new")
                    self.send_header("Connection", "close")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Connection", "close")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        def signed_for(qstash, delivery, url):
            return delivery.check_signature(url=url).ok

        def test_every_path(qstash):
            server = ThreadingHTTPServer(("127.0.0.1", 0), Local)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            qstash.mount("https://shop.example.com", api)
            qstash.mount("https://mail.example.com", web)
            qstash.rewrite("https://local.example.com", f"http://127.0.0.1:{server.server_port}")
            moved = qstash.endpoint("/moved").respond(
                reply(307, headers={"Location": "https://shop.example.com/hooks/restock/"})
            )
            client = qstash.client()
            urls = [
                "https://shop.example.com/hooks/restock",
                "https://mail.example.com/hooks/mail",
                "https://local.example.com/old",
                moved.url,
            ]
            for n, url in enumerate(urls):
                client.message.publish_json(url=url, body={"n": n}, retries=0)
            try:
                qstash.run_until_idle()
            finally:
                server.shutdown()
                server.server_close()
            got = {d.url: (d.status, d.response.body, d.outcome) for d in qstash.deliveries}
            assert got == {
                urls[0]: (201, b'{"n": 0}', "delivered"),
                urls[1]: (202, b'{"n": 1}', "delivered"),
                urls[2]: (200, b'{"n": 2}', "delivered"),
                urls[3]: (201, b'{"n": 3}', "delivered"),
            }
            # The signature names the URL that was published, whatever the hops.
            assert all(d.check_signature(url=d.url).ok for d in qstash.deliveries)

        def test_a_loop_fails_the_attempt(qstash):
            loop = qstash.endpoint("/loop").always(reply(302, headers={"Location": "/loop"}))
            qstash.client().message.publish_json(url=loop.url, body={}, retries=0)
            qstash.run_until_idle()
            assert qstash.deliveries.last.error.startswith(
                "TooManyRedirects: stopped after 10 redirects (last to /loop)"
            )
            assert loop.call_count == 1  # one attempt, eleven requests
            qstash.assert_dead_lettered(url=loop.url)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_an_async_view_may_publish_with_the_blocking_sdk(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest
        from fastapi import FastAPI
        from qstash import QStash

        app = FastAPI()

        @app.post("/hooks/order")
        async def order():
            # Blocking on purpose, as plenty of production code does.
            client = QStash(os.environ["QSTASH_TOKEN"])
            try:
                client.message.publish_json(url="https://shop.example.com/hooks/mail", body={})
            finally:
                client.http._client.close()
            return {"ok": True}

        @app.post("/hooks/mail")
        async def mail():
            return {"sent": True}

        @pytest.mark.qstash(timeout=5)
        @pytest.mark.parametrize("n", range(2))  # the second runs on the same emulator
        def test_order_then_mail(qstash, n):
            qstash.mount("https://shop.example.com", app)
            qstash.client().message.publish_json(
                url="https://shop.example.com/hooks/order", body={}
            )
            qstash.run_until_idle()
            assert [d.path for d in qstash.deliveries] == ["/hooks/order", "/hooks/mail"]
            assert [d.status for d in qstash.deliveries] == [200, 200]
        """
    )
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert result.duration < 20


def test_a_wait_that_gives_up_says_what_it_waited_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest

        release = threading.Event()

        def stuck(request):
            release.wait(10)
            return 200

        @pytest.mark.qstash(timeout=0.5)
        def test_stuck_handler(qstash):
            hook = qstash.endpoint("/stuck", stuck)
            res = qstash.client().message.publish_json(url=hook.url, body={})
            with pytest.raises(AssertionError) as info:
                qstash.run_until_idle()
            text = str(info.value)
            assert text.startswith("timed out after 0.5s running until no message is due")
            assert f"  {res.message_id} POST {hook.url}: in flight" in text
            release.set()
            qstash.wait_for(url=hook.url)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_nothing_leaves_the_machine_by_accident(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_an_unknown_host_is_not_contacted(qstash):
            url = "https://shop.example.com/hooks/restock"
            qstash.client().message.publish_json(url=url, body={}, retries=0)
            qstash.run_until_idle()
            assert qstash.deliveries.last.error == (
                "not sent: shop.example.com is not on this machine, and the qstash fixture "
                "keeps deliveries here: qstash.mount('https://shop.example.com', app) delivers "
                "into your app, qstash.rewrite('https://shop.example.com', "
                "'http://127.0.0.1:PORT') to a local server; "
                "@pytest.mark.qstash(network=True) lets it go out"
            )
            qstash.assert_dead_lettered(url=url)

        @pytest.mark.qstash(network=True)
        def test_a_test_may_allow_the_network(qstash):
            url = "http://shop.invalid/hooks/restock"  # RFC 6761: never resolves
            qstash.client().message.publish_json(url=url, body={}, retries=0)
            qstash.run_until_idle()
            assert not qstash.deliveries.last.error.startswith("not sent")
            qstash.assert_dead_lettered(url=url)

        def test_the_next_test_is_offline_again(qstash):
            url = "http://shop.invalid/hooks/restock"
            qstash.client().message.publish_json(url=url, body={}, retries=0)
            qstash.run_until_idle()
            assert qstash.deliveries.last.error.startswith("not sent: shop.invalid ")
            qstash.assert_dead_lettered(url=url)
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=3)


def test_an_app_that_never_yields_does_not_hold_later_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest
        from fastapi import FastAPI

        app = FastAPI()

        @app.post("/stuck")
        async def stuck():
            time.sleep(4)  # blocks its event loop: no await, no cancel
            return {}

        @app.post("/fine")
        async def fine():
            return {}

        @pytest.mark.qstash(timeout=3)
        def test_stuck(qstash):
            qstash.mount("https://app.example.com", app)
            qstash.client().message.publish_json(
                url="https://app.example.com/stuck", body={}, retries=0, timeout="1s"
            )
            qstash.run_until_idle()
            assert qstash.deliveries.last.error == "timeout after 1s"
            qstash.assert_dead_lettered(path="/stuck")

        @pytest.mark.qstash(timeout=1)
        def test_the_next_one_is_served_at_once(qstash):
            qstash.mount("https://app.example.com", app)
            qstash.client().message.publish_json(url="https://app.example.com/fine", body={})
            assert qstash.wait_for(path="/fine").status == 200
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=2)
