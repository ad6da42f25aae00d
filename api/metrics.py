"""GET /metrics (Prometheus text format) and the request id every log line carries.

/metrics is not public: with ``CUSTODY_METRICS_TOKEN`` set, a scrape must send it as a bearer token;
without, only a client on the loopback interface that did not come through a proxy (no
``X-Forwarded-For``) may scrape.
"""

from __future__ import annotations

import hmac
import os
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.deps import bearer_token
from archive import logs
from archive.config import get_settings
from archive.errors import Forbidden, Unauthorized
from archive.i18n import _
from archive.metrics import QueueCollector, StateCollector

router = APIRouter(tags=["health"])
LOOPBACK = {"127.0.0.1", "::1"}


def _allowed(request: Request) -> None:
    token = get_settings().metrics_token
    if token is not None and token.get_secret_value():
        sent = bearer_token(request) or ""
        if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            raise Unauthorized(_("metrics need the scrape token"))
        return
    host = request.client.host if request.client else ""
    if host not in LOOPBACK or "x-forwarded-for" in request.headers:
        raise Forbidden(_("metrics are served to this host only (or set a scrape token)"))


def _render(request: Request) -> bytes:
    extra = CollectorRegistry(auto_describe=False)
    extra.register(StateCollector(request.app.state.ctx.engine))
    extra.register(QueueCollector(request.app.state.redis))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(counters)  # type: ignore[no-untyped-call]
    else:
        counters = REGISTRY
    return generate_latest(counters) + generate_latest(extra)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    _allowed(request)
    body = await run_in_threadpool(_render, request)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


_MEDIA_PATH = re.compile(r"/api/v1/media/([0-9a-fA-F-]{36})")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContext:
    """ASGI middleware: a request id for every request (the client's ``X-Request-ID`` if it is a
    sane token, else a new one), echoed in the response, and the media id the path names, both in
    every log line written while the request runs (archive.logs)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        m = _MEDIA_PATH.match(scope.get("path", ""))
        t1 = logs.request_id.set(rid)
        t2 = logs.media_id.set(m.group(1) if m else "")

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(t1)
            logs.media_id.reset(t2)
