"""Oversight for auditors: early warnings and statistics, and who accessed what."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel

from api.deps import ClientAddr, CurrentUser, SessionDep
from api.templating import render_page
from archive.config import get_settings
from archive.errors import NotFound
from archive.i18n import _
from archive.localtime import LocalDateTime
from archive.oversight import services as oversight
from archive.oversight.models import LABELS_EN, AccessEventPublic, WarningKind, WarningsPublic

router = APIRouter(prefix="/api/v1/oversight", tags=["oversight"])


class AccessList(BaseModel):
    items: list[AccessEventPublic]
    total: int


class RunStarted(BaseModel):
    run_id: int
    counts: dict[str, int]


@router.get("/warnings", response_model=WarningsPublic)
def warnings(
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    kind: WarningKind | None = None,
    agency: Annotated[str | None, Query(max_length=64)] = None,
    officer: Annotated[str | None, Query(max_length=64)] = None,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WarningsPublic:
    """The latest early-warning run: records missing required recordings, gaps, officers without a
    valid certificate, recordings never linked; statistics per unit and officer."""
    q = oversight.WarningQuery(kind, agency, officer, case_id, limit, offset)
    return oversight.warnings(session, user, q, addr=addr)


@router.post("/warnings/run", response_model=RunStarted, status_code=201)
def run_check(session: SessionDep, user: CurrentUser, addr: ClientAddr) -> RunStarted:
    """Run the check now (it also runs on its schedule)."""
    s = get_settings()
    run = oversight.run_now(
        session, user, unlinked_days=s.unlinked_warning_days, timezone=s.timezone, addr=addr
    )
    return RunStarted(run_id=run.id or 0, counts=run.counts)


@router.get("/access", response_model=AccessList)
def access(
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    subject_type: Annotated[str | None, Query(pattern="^(case|media|record|party|query)$")] = None,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    actor: Annotated[str | None, Query(max_length=160)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    since: LocalDateTime | None = None,
    until: LocalDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AccessList:
    """Who viewed, streamed, downloaded or exported a case, record or recording: when, from where, why."""
    q = oversight.AccessQuery(subject_type, subject_id, case_id, actor, action, since, until, limit, offset)
    items, total = oversight.access(session, user, q, addr=addr)
    return AccessList(items=items, total=total)


# --------------------------------------------------------------------------- the auditors' page

pages = APIRouter(tags=["oversight page"])
PAGES = Path(__file__).resolve().parents[1] / "pages"
_ASSETS = {"oversight.js": "text/javascript", "oversight.css": "text/css"}
# Same policy as the review page: a shell with no data, scripts only from this origin, nothing inline.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _texts() -> dict[str, str]:
    """What oversight.js writes, in the request's language."""
    return {
        "run_facts": _("Check {run} finished {time} (recording-item list v{version})"),
        "no_run": _("No check has run yet"),
        "count": _("{kind}: {count}"),
        "activity": _("activity {activity}"),
        "gaps": _("gaps: {gaps}"),
        "time_span": _("{start} → {end}"),
        "received": _("received {time}"),
        "version": _("version {version}"),
        "list_sep": _(", "),
        "calendar_year": _(
            "the State Council's {year} holiday arrangement is not loaded: deadlines reaching {year} are "
            "provisional; load it with: {command}"
        ),
        "provisional_due": _("{domain} {ref}: due {due}, provisional ({years} not loaded)"),
        "domain_legal": _("legal review"),
        "domain_publicity": _("publicity"),
    }


def _labels() -> dict[str, dict[str, str]]:
    subjects = {
        "case": _("case"),
        "media": _("recording"),
        "record": _("text record"),
        "party": _("party"),
        "query": _("search"),
        "officer": _("officer"),
        "calendar": _("working-day calendar"),
        "legal-submission": _("proposed decision"),
        "decision": _("decision"),
    }
    return {"warning": {k: _(v) for k, v in LABELS_EN.items()}, "subject": subjects}


@pages.get("/oversight", response_class=HTMLResponse)
def oversight_page() -> HTMLResponse:
    """The auditors' page; its script reads the API with the auditor's token (the reads are logged).
    Served in the reader's language, times in the agency's zone."""
    return render_page("oversight.html", texts=_texts(), labels=_labels())


@pages.get("/oversight/assets/{name}", include_in_schema=False)
def oversight_asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise NotFound(_("no page asset {name}").format(name=name[:40]))
    return FileResponse(PAGES / name, media_type=_ASSETS[name], headers=_HEADERS)
