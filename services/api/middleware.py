"""ASGI middleware: request body limit (413) and API latency metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import REQUEST_ID, problem
from services.logs import request_id

API_LATENCY = Histogram(
    "viu_api_request_seconds", "API request latency", ["method", "route", "status"]
)


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, declared or streamed.

    A streamed (chunked) body is only found too large while the app reads
    it, and the app may turn the read error into an answer of its own
    (FastAPI answers 400 "error parsing the body"): once the limit is
    passed, whatever the app answers is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        over = False  # the body passed the limit
        started = False  # the app's answer began before that
        refused = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started, refused
            if over and not started:
                if not refused:
                    refused = True
                    await self._refuse(scope, receive, send)
                return  # the app's own answer to the failed read is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not started and not refused:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "Request body too large", f"the limit is {self.limit} bytes", "payload-too-large"
        )
        await response(scope, receive, send)


class NoNul:
    """Refuse NUL characters in the path or query: PostgreSQL cannot store them in text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            response = problem(422, "Invalid input", "NUL characters are not allowed", "invalid")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class RequestId:
    """Tag each request (``X-Request-ID`` in or a new one) so its log lines can be found."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)
        scope[REQUEST_ID] = rid

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            request_id.reset(token)


class Timing:
    """Record each request's latency by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            API_LATENCY.labels(scope["method"], name, str(status["code"])).observe(
                time.perf_counter() - started
            )
