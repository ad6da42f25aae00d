"""Headers every answer carries unless its route set its own (ASVS 5.0 3.4.4 and 14.3.2):
``X-Content-Type-Options: nosniff`` on every response, and ``Cache-Control: no-store`` on the API's
(``/api/``): custody data is never kept by a browser or a shared cache. Pages, media streams and the
public face set their own caching (the public face is meant to be cached)."""

from __future__ import annotations

from typing import Any


class SafeHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def send_safe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {bytes(k).lower() for k, _v in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if api and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_safe)
