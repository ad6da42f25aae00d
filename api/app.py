"""The FastAPI application: lifespan-built collaborators, one error handler, health, keys."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import swagger_ui_bundle
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics, openapi, validation
from api.deps import ClientAddr, CurrentUser, SessionDep, bearer_token, client_addr, make_throttle
from api.headers import SafeHeaders
from api.i18n import LanguageMiddleware, request_language
from api.i18n import remember as remember_language
from api.routers import (
    accounts as accounts_router,
)
from api.routers import (
    approvals,
    audit,
    cases,
    copyout,
    coverage,
    devices,
    direct,
    legal,
    media,
    oversight,
    parties,
    public,
    publicity,
    restricted,
    retention,
    signatures,
    uploads,
)
from archive import i18n, logs, vocabulary
from archive.accounts import services as accounts
from archive.config import get_settings
from archive.context import Context
from archive.db import session_scope
from archive.errors import Concealed, CustodyError, Forbidden, StorageError, TooManyAttempts, Unauthorized
from archive.i18n import N_, _
from archive.legal import services as legal_services
from archive.legal.errors import GateClosed
from archive.signing import Keyring
from archive.workdays.services import calendar_warnings

log = logging.getLogger("custody.api")
HEARTBEAT_PREFIX = "custody:worker-heartbeat:"

# Errors the framework raises itself (no route, wrong method ...): their machine code and message.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", N_("bad request")),
    401: ("unauthorized", N_("authentication required")),
    403: ("forbidden", N_("forbidden")),
    404: ("not_found", N_("not found")),
    405: ("method_not_allowed", N_("method not allowed")),
    413: ("too_large", N_("request body too large")),
    415: ("unsupported_media_type", N_("unsupported media type")),
}


class LanguageIn(BaseModel):
    language: str | None = Field(max_length=35, description="zh-CN, en, or null for the browser's")


def error_body(detail: str, code: str, **extra: Any) -> dict[str, Any]:
    """Every error answer: ``detail`` for people (in the request's language), ``code`` for programs."""
    return {"detail": detail, "code": code, **extra}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    s = get_settings()
    dispatcher = getattr(app.state, "dispatcher", None)
    if dispatcher is None:
        from workers.celery_app import CeleryDispatcher  # the public face of the workers

        dispatcher = CeleryDispatcher()
    ctx = Context.build(s, dispatcher)
    app.state.ctx = ctx
    app.state.redis = redis.Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=2)
    app.state.auth_throttle = make_throttle(app.state.redis)
    yield
    ctx.close()
    app.state.redis.close()


# The largest JSON body any endpoint takes (a text record of record_body_max_chars, every character
# escaped, is about 1.2 MB). Upload and attachment routes set their own limits.
MAX_JSON_BODY = 4 * 1024**2
_LONG_WORD = re.compile(r"[^\s,;:'\"]{65,}")


def create_app() -> FastAPI:
    app = FastAPI(
        title="Custody",
        version="0.1.0",
        description="Evidence and audio-video record archive. Calls need `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        # Bodies sent without Content-Length (chunked) are otherwise read whole before any check.
        max_body_size=MAX_JSON_BODY,
        # Swagger UI from this origin (below), never from a CDN; ReDoc has no local copy: off.
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/docs-static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Custody API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )

    app.include_router(uploads.router)
    app.include_router(direct.router)
    app.include_router(media.router)
    app.include_router(cases.router)
    app.include_router(cases.pages)
    app.include_router(audit.router)
    app.include_router(audit.exports)
    app.include_router(retention.router)
    app.include_router(legal.router)
    app.include_router(publicity.router)
    app.include_router(public.router)
    app.include_router(coverage.router)
    app.include_router(parties.router)
    app.include_router(signatures.router)
    app.include_router(oversight.router)
    app.include_router(oversight.pages)
    app.include_router(restricted.router)
    app.include_router(copyout.router)
    app.include_router(devices.router)
    app.include_router(approvals.router)
    app.include_router(accounts_router.router)
    app.include_router(accounts_router.sso)
    app.add_middleware(LanguageMiddleware)
    app.include_router(metrics.router)
    app.add_middleware(metrics.RequestContext)
    app.add_middleware(SafeHeaders)
    # The document says what the routes really answer (errors, media types, security): api/openapi.py.
    openapi.install(app)
    if get_settings().log_json:
        logs.use_json("uvicorn", "uvicorn.error", "uvicorn.access")

    @app.exception_handler(CustodyError)
    async def custody_error(request: Request, exc: CustodyError) -> JSONResponse:
        if isinstance(exc, Unauthorized | Forbidden | Concealed):
            await run_in_threadpool(_record_denied, request, exc)
        if isinstance(exc, GateClosed):
            await run_in_threadpool(_record_gate_refusal, request, exc)
        headers = (
            {"Tus-Resumable": uploads.TUS_VERSION} if request.url.path.startswith("/api/v1/uploads") else {}
        )
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        if exc.http_status == 423:
            headers["Retry-After"] = "5"
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        # An id of 10 KB is not echoed back: long words are cut (issue 10).
        detail = _LONG_WORD.sub(lambda m: m.group()[:64] + "...", str(exc))[:2000]
        if isinstance(exc, StorageError):
            # Bucket names and object keys stay on the server (they map the archive's layout).
            log.error("storage error on %s %s: %s", request.method, request.url.path, exc)
            detail = _("object storage is unavailable or an object is missing; the details were logged")
        return JSONResponse(error_body(detail, exc.error_code), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's English reworded in the request's language, naming each field (api/validation.py)
        return JSONResponse(error_body(validation.detail(exc.errors()), "request.invalid"), status_code=422)

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried: an id past the integer range, a NUL
        # character in text (found by tests/api/test_schema_fuzz.py). The client's input, not a fault.
        log.info("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        detail = _("invalid request: a value is out of range or contains a character that cannot be stored")
        return JSONResponse(error_body(detail, "request.unstorable"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_ERRORS.get(exc.status_code, (f"http_{exc.status_code}", ""))
        detail = _(message) if message else str(exc.detail)
        return JSONResponse(
            error_body(detail, code), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    class HealthOut(BaseModel):
        status: str = Field(description="`ok`, or `down: ` and what is down")
        checks: dict[str, str] = Field(description="database, redis, s3, worker: `ok` or why not")
        warnings: list[str] = Field(
            default=[],
            description="what needs an operator soon without anything being down (the status stays `ok`):"
            " a year the working-day calendar should know by now, with the command that loads it",
        )

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "Something the archive needs is down"}},
    )
    def healthz(request: Request) -> JSONResponse:
        """200 when the API, database, Redis and S3 answer and a worker is alive; 503 naming what is down."""
        checks: dict[str, str] = {}
        warnings: list[str] = []
        try:
            with Session(request.app.state.ctx.engine) as session:
                session.exec(text("SELECT 1"))  # type: ignore[call-overload]
                warnings = [w.message for w in calendar_warnings(session)]
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - a health check reports every failure, whatever it is
            checks["database"] = f"down: {exc.__class__.__name__}"
        try:
            r = request.app.state.redis
            r.ping()
            checks["redis"] = "ok"
            checks["worker"] = (
                "ok"
                if next(r.scan_iter(HEARTBEAT_PREFIX + "*", count=100), None)
                else "down: no worker heartbeat"
            )
        except redis.RedisError as exc:
            checks["redis"] = f"down: {exc.__class__.__name__}"
            checks["worker"] = "unknown: redis is down"
        try:
            request.app.state.ctx.store.ping()
            checks["s3"] = "ok"
        except CustodyError as exc:
            checks["s3"] = f"down: {exc}"
        ok = all(v == "ok" for v in checks.values())
        down = [k for k, v in checks.items() if v != "ok"]
        body: dict[str, Any] = {
            "status": "ok" if ok else "down: " + ", ".join(down),
            "checks": checks,
            "warnings": warnings,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    class MeOut(BaseModel):
        name: str
        role: str
        role_label: str
        language: str | None  # the user's own setting; None: the browser's, else the agency's
        effective_language: str  # what this answer (and the user's pages) are in

    def me_out(user: Any) -> MeOut:
        return MeOut(
            name=user.name,
            role=user.role,
            role_label=vocabulary.label("role", user.role),
            language=user.language,
            effective_language=i18n.current_language(),
        )

    @app.get("/api/v1/me", response_model=MeOut, tags=["accounts"])
    def me(user: CurrentUser) -> MeOut:
        """Who the token belongs to (the dock checks its token with this before sending anything)."""
        return me_out(user)

    @app.put("/api/v1/me/language", response_model=MeOut, tags=["accounts"])
    def set_my_language(
        request: Request,
        response: Response,
        body: LanguageIn,
        session: SessionDep,
        user: CurrentUser,
        addr: ClientAddr,
    ) -> MeOut:
        """Set your own language for pages, API errors and labels (any role; logged as user.language).
        ``null`` clears it: the browser's Accept-Language decides again. The answer also carries it to
        this browser's pages (the ``custody_lang`` cookie)."""
        accounts.set_language(session, user, body.language, client_addr=addr)
        remember_language(request, response, user.language)
        i18n.set_language(user.language or request_language(request.scope))
        return me_out(user)

    class KeyOut(BaseModel):
        key_id: str
        algorithm: str
        public_key_pem: str

    class KeysOut(BaseModel):
        keys: list[KeyOut]

    @app.get("/api/v1/keys", response_model=KeysOut, tags=["keys"])
    def keys(request: Request) -> KeysOut:
        """Public keys that verify manifest signatures (old keys stay listed after rotation).
        Public by design: anyone holding an export must be able to check it."""
        ring: Keyring = request.app.state.ctx.keyring
        return KeysOut(
            keys=[
                KeyOut(key_id=k.key_id, algorithm=k.algorithm, public_key_pem=k.public_key_pem)
                for k in ring.public_keys()
            ]
        )

    return app


def _record_gate_refusal(request: Request, exc: GateClosed) -> None:
    with session_scope(request.app.state.ctx.engine) as session:
        legal_services.record_gate_refusal(
            session,
            getattr(request.state, "user_name", None),
            exc,
            f"{request.method} {request.url.path}",
            client_addr(request),
        )


def _record_denied(request: Request, exc: CustodyError) -> None:
    if getattr(request.state, "quiet_denial", False):
        return  # past the failure limit: the window's one auth.throttled entry stands for it (api/deps.py)
    # Set by the authentication dependencies once a token is accepted: a 403 names who was refused.
    user = getattr(request.state, "user_name", None)
    with session_scope(request.app.state.ctx.engine) as session:
        accounts.record_denied(
            session,
            user,
            "auth.denied" if isinstance(exc, Unauthorized) else "access.denied",
            f"{request.method} {request.url.path}",
            client_addr(request),
            reason=str(exc),
        )
    if bearer_token(request) is None:
        log.info("unauthenticated %s %s from %s", request.method, request.url.path, client_addr(request))


app = create_app()
