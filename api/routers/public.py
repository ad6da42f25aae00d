"""The public face of enforcement publicity: unauthenticated pages under ``/public/`` and a JSON feed
at ``/public/api/...``.

Safe to put on the internet:
- it reads only what archive.publicity.public builds from allow-listed fields (published, redacted
  text; notices of withdrawal; the roster's public fields; released documents; published reports);
- every page is rendered on the server with every value escaped, no script at all, and a CSP that
  allows nothing but this origin's stylesheet;
- answers carry a strong ETag (SHA-256 of the body) and ``Cache-Control: public``, so a cache or a
  browser revalidates with ``If-None-Match`` and gets 304;
- each client address may make ``public_rate_limit`` requests (a `limits` rate string) counted in
  Redis, so several API processes share one count; over it the answer is 429 with Retry-After. Behind
  a reverse proxy, run uvicorn with ``--forwarded-allow-ips`` so the client address is the real one.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from api.deps import client_addr, get_context
from api.openapi import errors, header
from archive import i18n, vocabulary
from archive.config import get_settings
from archive.i18n import N_, _
from archive.publicity import public
from archive.publicity import report as annual
from archive.publicity.models import DecisionCategory
from archive.publicity.services import today

log = logging.getLogger("custody.public")
PAGES = Path(__file__).resolve().parents[1] / "pages"

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class _Limiter:
    def __init__(self, redis_url: str, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)
        self.strategy = FixedWindowRateLimiter(storage_from_string(redis_url))

    def hit(self, addr: str) -> tuple[bool, int]:
        """Whether ``addr`` may go on, and the seconds until its window resets."""
        ok = self.strategy.hit(self.item, "custody-public", addr)
        if ok:
            return True, 0
        reset, _remaining = self.strategy.get_window_stats(self.item, "custody-public", addr)
        return False, max(int(reset - time.time()) + 1, 1)


def _limiter(request: Request) -> _Limiter:
    limiter: _Limiter | None = getattr(request.app.state, "public_limiter", None)
    if limiter is None:
        s = get_settings()
        limiter = _Limiter(s.redis_url, s.public_rate_limit)
        request.app.state.public_limiter = limiter
    return limiter


def rate_limit(request: Request) -> None:
    try:
        ok, retry = _limiter(request).hit(client_addr(request))
    except Exception as exc:  # noqa: BLE001 - a limiter whose store is down must not take the site down
        log.warning("public rate limiter unavailable (%s): request let through", exc.__class__.__name__)
        return
    if not ok:
        raise HTTPException(
            status_code=429,
            detail=_("Too many requests from this address; try again later."),
            headers={"Retry-After": str(retry), "Cache-Control": "no-store"},
        )


@contextmanager
def _open(request: Request) -> Iterator[public.Reader]:
    """The rate limit, then a read-only session (the public face never writes). Called inside each
    endpoint rather than as dependencies: sync dependencies cost a thread-pool hop each, and the feed
    is meant to answer hundreds of requests a second on one worker."""
    rate_limit(request)
    with public.reading(get_context(request).engine) as session:
        yield session


router = APIRouter(
    prefix="/public",
    tags=["public"],
    responses={
        200: {"headers": {"ETag": header("SHA-256 of the body (strong)", required=True)}},
        304: {"description": "Not modified: `If-None-Match` named the current ETag"},
        **errors(429),
    },
)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _answer(request: Request, body: bytes, media_type: str, etag: str | None = None) -> Response:
    etag = etag or _etag(body)
    max_age = get_settings().public_cache_max_age_s
    headers = {
        "ETag": etag,
        # max-age 0 (the default): caches keep the answer but revalidate it every time (a cheap 304),
        # so a withdrawal leaves every screen at once.
        "Cache-Control": f"public, max-age={max_age}" if max_age else "public, no-cache",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Vary": "Accept-Encoding",
    }
    match = request.headers.get("if-none-match", "")
    if etag in {m.strip() for m in match.split(",")} or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json(request: Request, value: Any) -> Response:
    return _answer(request, _json_bytes(value), "application/json")


class _Rendered:
    """Rendered decision answers, keyed by what was asked and the decisions' generation (a count and
    the newest change, one indexed query): a publication, correction or withdrawal changes the
    generation, so nothing stale is ever served, and a repeated question costs one small query."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.items: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()
        self.lock = threading.Lock()

    def answer(
        self,
        request: Request,
        session: public.Reader,
        key: tuple[Any, ...],
        media_type: str,
        render: Callable[[], bytes | None],
    ) -> Response | None:
        full = (*key, public.generation(session))
        with self.lock:
            hit = self.items.get(full)
            if hit is not None:
                self.items.move_to_end(full)
        if hit is None:
            body = render()
            if body is None:
                return None
            hit = (body, _etag(body))
            with self.lock:
                self.items[full] = hit
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
        return _answer(request, hit[0], media_type, hit[1])


_rendered = _Rendered()


# --------------------------------------------------------------------------- pages

# A public page is served in one language: ``?lang=`` (its language switch), else the visitor's
# Accept-Language, else the agency's default (zh-CN). The language cookie of signed-in staff is not
# read here: answers are cached publicly (Vary: Accept-Language), and a cookie must not change them.
NAV = (
    ("decisions", N_("Enforcement decisions")),
    ("roster", N_("Enforcement staff")),
    ("inspections", N_("Random inspections")),
    ("documents", N_("Published in advance")),
    ("reports", N_("Yearly reports")),
)


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class _View:
    """The language a public page is rendered in, and whether the visitor chose it (``?lang=``):
    then the page's own links keep it."""

    lang: str
    chosen: bool

    def href(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> str:
        query = [(k, str(v)) for k, v in params if v is not None]
        if self.chosen:
            query.append(("lang", self.lang))
        return e(path + ("?" + urlencode(query) if query else ""))


def _view(request: Request) -> _View:
    chosen = i18n.normalize(request.query_params.get("lang"))
    return _View(i18n.current_language(), chosen is not None)


def _page(
    request: Request, view: _View, title: str, content: str, path: str = "", params: Any = ()
) -> Response:
    body = _page_bytes(view, title, content, path or request.url.path, params)
    return _answer(request, body, "text/html; charset=utf-8")


def _switch(view: _View, path: str, params: Sequence[tuple[str, Any]]) -> str:
    """Links to this same page in the other languages (no script needed)."""
    links = []
    for tag, name in i18n.LANGUAGE_NAMES.items():
        if tag == view.lang:
            links.append(f'<span aria-current="true" lang="{e(tag)}">{e(name)}</span>')
        else:
            query = [(k, str(v)) for k, v in params if v is not None] + [("lang", tag)]
            href = e(path + "?" + urlencode(query))
            links.append(f'<a href="{href}" hreflang="{e(tag)}" lang="{e(tag)}">{e(name)}</a>')
    label = _("Language")
    return f'<nav class="languages" aria-label="{e(label)}">{" ".join(links)}</nav>'


def _page_bytes(
    view: _View, title: str, content: str, path: str, params: Sequence[tuple[str, Any]] = ()
) -> bytes:
    home = get_settings().publicity_authority or _("Enforcement publicity")
    nav = "".join(f'<a href="{view.href(f"/public/{key}")}">{e(_(name))}</a>' for key, name in NAV)
    footer = _("Published under the enforcement publicity system. Personal data is redacted.")
    doc = f"""<!doctype html>
<html lang="{e(view.lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · {e(home)}</title>
<link rel="stylesheet" href="/public/static/public.css">
</head>
<body>
<header><a class="home" href="{view.href("/public/")}">{e(home)}</a>
<nav class="sections">{nav}</nav>{_switch(view, path, params)}</header>
<main>
<h1>{e(title)}</h1>
{content}
</main>
<footer>{e(footer)}</footer>
</body>
</html>
"""
    return doc.encode("utf-8")


def _decision_html(entry: dict[str, Any], full: bool) -> str:
    category = vocabulary.label("publicity_category", entry["category"])
    words = {
        "category": _("Category"),
        "number": _("Document number"),
        "decided": _("Decided on"),
        "published": _("Published on"),
        "corrected": _("Corrected on"),
        "party": _("Party"),
        "conclusion": _("Conclusion"),
    }
    head = (
        f'<dl class="meta"><dt>{e(words["category"])}</dt><dd>{e(category)}</dd>'
        f"<dt>{e(words['number'])}</dt><dd>{e(entry['document_no'] or '—')}</dd>"
        f"<dt>{e(words['decided'])}</dt><dd>{e(entry['decided_on'])}</dd>"
        f"<dt>{e(words['published'])}</dt><dd>{e(entry['published_on'])}</dd>"
    )
    if entry["corrected_on"]:
        head += f"<dt>{e(words['corrected'])}</dt><dd>{e(entry['corrected_on'])}</dd>"
    w = entry["withdrawn"]
    if w is not None:
        notice = _("This decision was withdrawn on {date} ({ground}). Reason: {reason}").format(
            date=w["date"], ground=vocabulary.label("withdrawal_ground", w["ground"]), reason=w["reason"]
        )
        return head + f'</dl><p class="withdrawn">{e(notice)}</p>'
    party = _("{party} ({kind})").format(
        party=entry["party"], kind=vocabulary.label("party_kind", entry["party_kind"])
    )
    head += (
        f"<dt>{e(words['party'])}</dt><dd>{e(party)}</dd>"
        f"<dt>{e(words['conclusion'])}</dt><dd>{e(entry['conclusion'])}</dd>"
    )
    done = entry.get("performance")
    if done:
        status = _("{status} (as of {date})").format(
            status=vocabulary.label("performance_status", done["status"]), date=done["as_of"]
        )
        title = _("Performance")
        head += f'<dt>{e(title)}</dt><dd class="performance">{e(status)}</dd>'
    head += "</dl>"
    if full:
        head += f'<pre class="text">{e(entry["text"])}</pre>'
    return head


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    rate_limit(request)
    view = _view(request)
    items = "".join(f'<li><a href="{view.href(f"/public/{key}")}">{e(_(name))}</a></li>' for key, name in NAV)
    return _page(request, view, _("Enforcement publicity"), f'<ul class="index">{items}</ul>')


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(
    request: Request,
    category: DecisionCategory | None = None,
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    view = _view(request)
    with _open(request) as session:

        def render() -> bytes:
            size = 20
            items, total = public.decisions(
                session, category=category, year=year, limit=size, offset=(page - 1) * size
            )
            every, withdrawn, next_page = _("All"), _("Withdrawn"), _("Next page")
            links = [f'<a href="{view.href("/public/decisions")}">{e(every)}</a>'] + [
                f'<a href="{view.href("/public/decisions", [("category", c)])}">'
                f"{e(vocabulary.label('publicity_category', c))}</a>"
                for c in DecisionCategory
            ]
            tag = f'<span class="tag">{e(withdrawn)}</span>'
            rows = "".join(
                f'<li class="decision"><a href="{view.href("/public/decisions/" + quote(i["ref"]))}">'
                f"{e(vocabulary.label('publicity_category', i['category']))} · {e(i['decided_on'])}</a>"
                f"{tag if i['withdrawn'] else ''}{_decision_html(i, full=False)}</li>"
                for i in items
            )
            more = ""
            if total > page * size:
                params = [("category", category), ("year", year), ("page", page + 1)]
                href = view.href("/public/decisions", params)
                more = f'<p><a class="next" href="{href}">{e(next_page)}</a></p>'
            count = _("{total} in all").format(total=total)
            body = (
                f'<p class="filters">{" ".join(links)}</p><p>{e(count)}</p>'
                f'<ol class="decisions">{rows}</ol>{more}'
            )
            params = [("category", category), ("year", year), ("page", page if page > 1 else None)]
            return _page_bytes(view, _("Enforcement decisions"), body, "/public/decisions", params)

        key = ("page", view, category, year, page)
        return _rendered.answer(request, session, key, "text/html; charset=utf-8", render) or _not_found()


@router.get("/decisions/{ref}", response_class=HTMLResponse)
def decision_page(ref: str, request: Request) -> Response:
    view = _view(request)
    with _open(request) as session:

        def render() -> bytes | None:
            entry = public.decision(session, ref[:32])
            if entry is None:
                return None
            title = _("{category} decision").format(
                category=vocabulary.label("publicity_category", entry["category"])
            )
            path = "/public/decisions/" + quote(entry["ref"])
            return _page_bytes(view, title, _decision_html(entry, True), path)

        return (
            _rendered.answer(request, session, ("one", view, ref[:32]), "text/html; charset=utf-8", render)
            or _not_found()
        )


def _not_found() -> Response:
    raise HTTPException(status_code=404, detail=_("No such published decision."))


@router.get("/roster", response_class=HTMLResponse)
def roster_page(request: Request) -> Response:
    view = _view(request)
    with _open(request) as session:
        rows = public.roster_entries(session, today())
        head = (
            _("Name"),
            _("Unit"),
            _("Post"),
            _("Badge number"),
            _("Certificate number"),
            _("Enforcement category"),
            _("Area"),
            _("Valid"),
        )
        valid = _("{start} to {end}")
        table = "".join(
            "<tr>"
            + "".join(
                f"<td>{e(r[k])}</td>"
                for k in ("name", "unit", "post", "badge_no", "certificate_no", "category", "area")
            )
            + f"<td>{e(valid.format(start=r['valid_from'], end=r['valid_to']))}</td></tr>"
            for r in rows
        )
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        body = f'<table class="roster"><thead><tr>{th}</tr></thead><tbody>{table}</tbody></table>'
        return _page(request, view, _("Enforcement staff"), body)


@router.get("/inspections", response_class=HTMLResponse)
def inspections_page(
    request: Request,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Published random-inspection results (双随机抽查结果), newest first."""
    view = _view(request)
    size = 20
    with _open(request) as session:
        items, total = public.inspection_list(session, limit=size, offset=(page - 1) * size)
    words = (
        _("Inspection item"),
        _("Inspected party"),
        _("Inspected on"),
        _("Inspection result"),
        _("Inspection summary"),
    )
    rows = "".join(
        '<li class="inspection"><dl class="meta">'
        + "".join(
            f"<dt>{e(word)}</dt><dd>{e(value)}</dd>"
            for word, value in zip(
                words,
                (
                    i["item"],
                    _("{party} ({kind})").format(
                        party=i["party"], kind=vocabulary.label("party_kind", i["party_kind"])
                    ),
                    i["inspected_on"],
                    vocabulary.label("inspection_result", i["result"]),
                    i["summary"],
                ),
                strict=True,
            )
        )
        + "</dl></li>"
        for i in items
    )
    more = ""
    if total > page * size:
        href, next_page = view.href("/public/inspections", [("page", page + 1)]), _("Next page")
        more = f'<p><a class="next" href="{href}">{e(next_page)}</a></p>'
    count = _("{total} in all").format(total=total)
    body = f'<p>{e(count)}</p><ol class="inspections">{rows}</ol>{more}'
    params = [("page", page if page > 1 else None)]
    return _page(request, view, _("Random inspections"), body, "/public/inspections", params)


@router.get("/documents", response_class=HTMLResponse)
def documents_page(request: Request) -> Response:
    view = _view(request)
    with _open(request) as session:
        items = "".join(
            f'<li><a href="{view.href("/public/documents/" + quote(d["key"]))}">{e(d["title"])}</a> '
            f'<span class="kind">{e(vocabulary.label("publicity_document", d["kind"]))}</span> '
            f'<span class="date">{e(d["published_on"])}</span></li>'
            for d in public.document_list(session)
        )
        return _page(request, view, _("Published in advance"), f'<ul class="documents">{items}</ul>')


@router.get("/documents/{key}", response_class=HTMLResponse)
def document_page(key: str, request: Request) -> Response:
    view = _view(request)
    with _open(request) as session:
        found = public.document_list(session, key[:64])
        if not found:
            raise HTTPException(status_code=404, detail=_("No such document."))
        d = found[0]
        facts = " · ".join(
            (
                vocabulary.label("publicity_document", d["kind"]),
                _("version {version}").format(version=d["version"]),
                str(d["published_on"] or ""),
            )
        )
        body = f'<p class="meta">{e(facts)}</p><pre class="text">{e(d["body"])}</pre>'
        return _page(request, view, d["title"], body, "/public/documents/" + quote(d["key"]))


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    view = _view(request)
    name = _("Enforcement in {year}: the yearly report")
    with _open(request) as session:
        items = "".join(
            f'<li><a href="{view.href(f"/public/reports/{r.year}")}">{e(name.format(year=r.year))}</a></li>'
            for r in public.reports(session)
        )
        return _page(request, view, _("Yearly reports"), f'<ul class="reports">{items}</ul>')


@router.get("/reports/{year}", response_class=HTMLResponse)
def report_page(year: int, request: Request) -> Response:
    view = _view(request)
    with _open(request) as session:
        r = public.report(session, year)
        if r is None:
            raise HTTPException(status_code=404, detail=_("No published report for this year."))
        signed, keys = _("Signed (Ed25519) with key {key}").format(key=r.key_id), _("Public keys")
        body = annual.render_html(r.body) + (
            f'<p class="sig">{e(signed)} · <a href="/public/api/reports/{year}">JSON</a> · '
            f'<a href="/api/v1/keys">{e(keys)}</a></p>'
        )
        return _page(
            request, view, _("Yearly report {year}").format(year=year), body, f"/public/reports/{year}"
        )


@router.get("/static/public.css", include_in_schema=False)
def stylesheet(request: Request) -> Response:
    rate_limit(request)
    return _answer(request, (PAGES / "public.css").read_bytes(), "text/css; charset=utf-8")


# --------------------------------------------------------------------------- JSON feed


@router.get("/api/decisions")
def feed(
    request: Request,
    category: DecisionCategory | None = None,
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
    limit: Annotated[int, Query(ge=1, le=public.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Published decisions, redacted; withdrawn ones as a notice (``withdrawn``: date, ground, reason)
    with no text. Newest publication first."""
    with _open(request) as session:

        def render() -> bytes:
            items, total = public.decisions(session, category=category, year=year, limit=limit, offset=offset)
            return _json_bytes({"items": items, "total": total, "limit": limit, "offset": offset})

        key = ("feed", category, year, limit, offset)
        return _rendered.answer(request, session, key, "application/json", render) or _not_found()


@router.get("/api/decisions/{ref}")
def feed_item(ref: str, request: Request) -> Response:
    with _open(request) as session:

        def render() -> bytes | None:
            entry = public.decision(session, ref[:32])
            return None if entry is None else _json_bytes(entry)

        return (
            _rendered.answer(request, session, ("item", ref[:32]), "application/json", render) or _not_found()
        )


@router.get("/api/roster")
def roster_feed(request: Request) -> Response:
    with _open(request) as session:
        return _json(request, {"on": today().isoformat(), "items": public.roster_entries(session, today())})


@router.get("/api/documents")
def documents_feed(request: Request) -> Response:
    with _open(request) as session:
        return _json(request, {"items": public.document_list(session)})


@router.get("/api/inspections")
def inspections_feed(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=public.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Published random-inspection results, newest publication first: ``ref``, ``authority``, ``item``,
    ``party_kind``, ``party`` (a natural person's name masked), ``inspected_on``, ``result``,
    ``result_label``, ``summary`` (redacted), ``published_on``, ``sha256``. A withdrawn one is gone."""
    with _open(request) as session:
        items, total = public.inspection_list(session, limit=limit, offset=offset)
        return _json(request, {"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/api/reports/{year}")
def report_feed(year: int, request: Request) -> Response:
    """The signed report: ``signature`` verifies ``body`` (RFC 8785 bytes) with the key of that id
    from ``/api/v1/keys``."""
    with _open(request) as session:
        r = public.report(session, year)
        if r is None:
            raise HTTPException(status_code=404, detail=_("No published report for this year."))
        return _json(
            request,
            {"year": r.year, "version": r.version, "body": r.body, "signature": annual.signature_of(r)},
        )
