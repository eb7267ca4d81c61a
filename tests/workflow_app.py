"""A workflow service for the tests: FastAPI with the official ``upstash-workflow`` SDK, on a
real port in a thread, pointed at an emulator (signatures verified)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qstash import AsyncQStash, Receiver
from upstash_workflow.fastapi import Serve

from qstash_emulator import Emulator
from qstash_emulator.server.serving import ThreadedServer

__all__ = ["WorkflowApp"]


class WorkflowApp:
    """``app`` served on 127.0.0.1; ``route`` registers a workflow at ``path``."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.app = FastAPI()
        self.serve = Serve(self.app)
        self.log: list[Any] = []  # what the workflows record as they run
        self._server = ThreadedServer(self.app, name="workflow-app", log_level="error").start()
        self.url = f"http://127.0.0.1:{self._server.port}"

    def route(self, path: str, **options: Any) -> Any:
        """``serve.post`` with a client and a receiver for the emulator's default user."""
        em = self.emulator
        options.setdefault("qstash_client", AsyncQStash(em.token, base_url=em.url))
        options.setdefault(
            "receiver",
            Receiver(
                current_signing_key=em.current_signing_key,
                next_signing_key=em.next_signing_key,
            ),
        )
        return self.serve.post(path, **options)

    def stop(self) -> None:
        self._server.stop()
