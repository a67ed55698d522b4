"""Request limits, enforced before a route sees the request (pure ASGI middleware).

- Body size: 1 MiB, 10 MiB for the CSV import (413). The body is read whole here, at most
  the limit, and replayed to the app, so a chunked upload cannot slip past the limit. For
  scale: nginx's client_max_body_size defaults to 1 MiB; our largest JSON (a 1,000-message
  bulk send of long texts) stays below it.
- NUL characters (raw, %00 or \\u0000) anywhere in the path, query or body: 400. PostgreSQL
  text cannot hold them, and no SMS, name or code needs one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_LIMIT = 1024 * 1024
LARGE_LIMITS = {"/accounts/import": 10 * 1024 * 1024}


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    def __init__(self, app: ASGIApp, *, default: int = DEFAULT_LIMIT,
                 large: dict[str, int] | None = None):
        self.app = app
        self.default = default
        self.large = LARGE_LIMITS if large is None else large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        raw_path = scope.get("raw_path") or path.encode()
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in raw_path or b"%00" in query or b"\x00" in query:
            await _error(send, 400, "bad_request", "NUL characters are not accepted")
            return
        limit = self.large.get(path, self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _error(send, 400, "bad_request", "bad Content-Length")
                    return
                if declared > limit:
                    await _error(send, 413, "payload_too_large",
                                 f"request body over {limit} bytes")
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _error(send, 413, "payload_too_large", f"request body over {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"\x00" in body or b"\\u0000" in body:
            await _error(send, 400, "bad_request", "NUL characters are not accepted")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
