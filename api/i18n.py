"""The language of each HTTP request (archive.i18n holds the catalogs and the active language).

Order, first that names a supported language:

1. ``?lang=`` on a page (the page's own language links);
2. the user's own setting (not on the public face, ``/public/``, whose answers caches share): for
   API calls, read from the token by the authentication dependency
   (``api.deps.current_user``); for pages, which load before their script has the token, from the
   ``custody_lang`` cookie that ``POST /api/v1/session`` sets from that same setting;
3. ``Accept-Language``;
4. the agency's default (``CUSTODY_LANGUAGE``, zh-CN).

Every response says which it used (``Content-Language``) and that it varies with ``Accept-Language``.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archive import i18n

COOKIE = "custody_lang"


def request_language(scope: Scope) -> str | None:
    """The language a request asks for before its user is known (None: the default)."""
    headers = Headers(scope=scope)
    if scope.get("type") == "http" and not scope.get("path", "").startswith("/api/"):
        asked = i18n.normalize(QueryParams(scope.get("query_string", b"")).get("lang"))
        if asked is not None:
            return asked
    # The public face is cached publicly by URL and Accept-Language: a cookie must not change it.
    public = scope.get("path", "").startswith("/public/")
    for part in [] if public else headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            chosen = i18n.normalize(value.strip('"'))
            if chosen is not None:
                return chosen
    return i18n.negotiate(headers.get("accept-language"))


class LanguageMiddleware:
    """Runs each request in its own language scope (a pure ASGI middleware, so the scope is the
    context every dependency, endpoint and exception handler of the request runs in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-language" not in headers:
                    headers["Content-Language"] = i18n.current_language()
                headers.add_vary_header("Accept-Language")
            await send(message)

        with i18n.use_language(request_language(scope)):
            await self.app(scope, receive, send_with_language)


def remember(request: Request, response: Response, language: str | None) -> None:
    """Carry the user's own language to their pages: the ``custody_lang`` cookie (set by
    ``POST /api/v1/session`` and ``PUT /api/v1/me/language``); None deletes it, so the browser's
    ``Accept-Language`` decides again."""
    if language:
        response.set_cookie(
            COOKIE,
            language,
            max_age=365 * 86400,
            path="/",
            samesite="strict",
            httponly=True,
            secure=request.url.scheme == "https",
        )
    else:
        response.delete_cookie(COOKIE, path="/")
