"""The OpenAPI document tells the truth (issue 10, finding 7).

FastAPI documents what a route returns when all goes well and a 422 body (``HTTPValidationError``, a
list) that this API never sends. Every error here is ``{"detail": "...", "code": "..."}`` (one handler
in api/app.py), so this module rewrites the generated document once, centrally, for every route that
is or will be included in the app:

- each operation lists the error statuses it can answer, worked out from the route itself: 401 and
  403 (and 429, the sign-in throttle) where a dependency authenticates (``current_user``, the review
  page's ``viewer``), 404 where the path names a thing (or, for a caller, any input may), 400 and
  422 where there is any input, 413 where there is a body, 409 on writes, 503 where object storage
  or the signing keys are used; a router or route adds what only it can answer with
  ``responses=errors(412, 460)`` (tus, 429 ...), or ``_EXTRA`` here for routers kept elsewhere;
- every 4xx/5xx answer, and FastAPI's own 422, has the one error schema (``Error``);
- bearer tokens (and the review page's streaming cookie) are declared as security schemes, on the
  operations that need them;
- routes that answer bytes (media, exports, CSV, HTML) say their media types with :func:`binary`.

tests/api/test_openapi.py checks the document; tests/api/test_schema_fuzz.py holds the application to
it with Schemathesis, role by role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, Field

from api.deps import current_principal, current_user, get_keyring, get_store
from api.viewsession import COOKIE, viewer


class ErrorOut(BaseModel):
    """Every error answer of this API (api/app.py's handlers)."""

    detail: str = Field(description="What is wrong, for people: in the caller's language (zh-CN or en).")
    code: str = Field(
        description="Stable machine code for programs (`case.not_found`, `request.invalid`, "
        "`upload.checksum_mismatch` ...); never changes for a given refusal."
    )


ERROR_SCHEMA = "Error"
_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}

# What each error status means here (the operation's own description may be more precise).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: the input is malformed or refused (`detail` says why)",
    401: "No valid bearer token (or streaming cookie); logged as `auth.denied`",
    403: "The caller's role may not do this; logged as `access.denied`",
    404: "Not found, or not visible to the caller (existence is not disclosed)",
    409: "Conflicts with what is stored (duplicate, wrong state, closed case, the legal-review gate)",
    412: "Precondition failed: `Tus-Resumable` is not 1.0.0",
    413: "Request body, upload or metadata too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "The request does not match the schema (the fields are named in `detail`), or bytes do not "
    "match their digest",
    423: "Locked: another request is writing to this upload (`Retry-After`)",
    429: "Too many requests, or too many failed sign-ins, from this address or account (`Retry-After`)",
    460: "Checksum mismatch: the PATCH's `Upload-Checksum` did not match its body; nothing of it was kept",
    503: "A service the archive needs (object storage, a media tool) is unavailable; the details were logged",
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    423: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
}

# Answers that routes kept by other pieces of work give beyond what their signatures show (single
# sign-on: redirects; 404 while it is not configured), so their routers need not change.
_LOCATION = {"Location": {"required": True, "schema": {"type": "string"}}}
_EXTRA: dict[str, dict[str, dict[str, Any]]] = {
    "/auth/oidc/login": {
        "302": {"description": "To the identity provider", "headers": _LOCATION},
        **{str(k): {"description": ERROR_DESCRIPTIONS[k]} for k in (404, 429)},
    },
    "/auth/oidc/callback": {
        "303": {"description": "Signed in: to the page, the token in the fragment", "headers": _LOCATION},
        **{str(k): {"description": ERROR_DESCRIPTIONS[k]} for k in (401, 403, 404, 429)},
    },
}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_AUTHENTICATORS: set[Callable[..., Any]] = {current_principal, current_user, viewer}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error statuses a route or router answers beyond the ones worked out
    from its signature (their body schema is filled in centrally)."""
    return {status: {"description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def binary(
    *media_types: str,
    description: str,
    status: int = 200,
    ranges: bool = False,
    headers: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering bytes (use with ``response_class=Response`` or a streaming
    class, so FastAPI does not also claim ``application/json``)."""
    content = {t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": description, "content": content, "headers": dict(headers or {})}
    }
    if ranges:
        out[status]["headers"]["Accept-Ranges"] = {"schema": {"type": "string", "enum": ["bytes"]}}
        out[206] = {
            "description": "The one range asked for (`Range: bytes=...`)",
            "content": content,
            "headers": {
                **(headers or {}),
                "Content-Range": {"required": True, "schema": {"type": "string"}},
            },
        }
        out[416] = {"description": ERROR_DESCRIPTIONS[416]}
    return out


def header(description: str, *, required: bool = False, type_: str = "string") -> dict[str, Any]:
    """A response header's description (for ``responses=``)."""
    return {"description": description, "required": required, "schema": {"type": type_}}


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the corrected document (built once, like FastAPI's)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            correct(app, generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def correct(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's document in place (see the module's docstring)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = ErrorOut.model_json_schema()
    schemas[ERROR_SCHEMA]["title"] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {}).update(
        {
            "bearer": {"type": "http", "scheme": "bearer", "description": "`custody users add` prints it"},
            "viewCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": COOKIE,
                "description": "The review page's streaming cookie (`POST /api/v1/session`)",
            },
        }
    )
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        ops = schema["paths"].get(route.path_format, {})
        calls = set(_calls(route.dependant))
        for method in route.methods:
            op = ops.get(method.lower())
            if op is None:
                continue
            _correct_operation(op, route, method, calls)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


def _correct_operation(op: dict[str, Any], route: Any, method: str, calls: set[Any]) -> None:
    dependant: Dependant = route.dependant
    responses: dict[str, Any] = op.setdefault("responses", {})
    statuses: set[int] = set()
    if calls & _AUTHENTICATORS:
        statuses |= {401, 403, 429}  # 429: too many failed sign-ins from this address or account
        op["security"] = [{"bearer": []}, {"viewCookie": []}] if viewer in calls else [{"bearer": []}]
    has_body = route.body_field is not None or "requestBody" in op
    inputs = bool(
        dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params
    )
    if inputs or has_body:
        statuses |= {400, 422}
    # A thing named in the path, or (for a caller) in the query or body, that does not exist or that the
    # caller may not see.
    if dependant.path_params or (statuses & {401} and (inputs or has_body)):
        statuses.add(404)
    if has_body:
        statuses.add(413)
    if method in _WRITES:
        statuses.add(409)
    if calls & {get_store, get_keyring}:
        statuses.add(503)
    for status in statuses:
        responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
    for key, answer in _EXTRA.get(route.path_format, {}).items():
        responses.setdefault(key, dict(answer))
    for key, answer in responses.items():
        if not (key.isdigit() and int(key) >= 400):
            continue
        content = answer.get("content")
        if method == "HEAD":  # a HEAD answer has headers only
            answer.pop("content", None)
        elif content is None or _is_framework_422(content):
            answer["content"] = {"application/json": {"schema": dict(_REF)}}
        if int(key) == 422 and answer.get("description") == "Validation Error":
            answer["description"] = ERROR_DESCRIPTIONS[422]
        extra = _ERROR_HEADERS.get(int(key))
        if extra:
            answer.setdefault("headers", {}).update(extra)
    op["responses"] = dict(sorted(responses.items()))


def _is_framework_422(content: dict[str, Any]) -> bool:
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return bool(ref.endswith("/HTTPValidationError"))


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route as the app serves it (with its routers' prefixes, dependencies, responses)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before 0.16x: included routes are copied into app.routes
        yield from (r for r in app.routes if isinstance(r, routing.APIRoute))
        return
    for ctx in contexts(app.routes):
        if isinstance(ctx.original_route, routing.APIRoute):
            yield ctx


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)
