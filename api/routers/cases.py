"""Cases, text records, case-media links, the case timeline, record search and the review page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from api import viewsession
from api.deps import ClientAddr, CurrentUser, DispatcherDep, KeyringDep, SessionDep, StoreDep
from api.i18n import remember as remember_language
from api.openapi import header
from api.templating import PAGE_HEADERS, render_page
from archive import i18n, vocabulary
from archive.accounts import services as accounts
from archive.approvals import services as approvals
from archive.approvals.models import ApprovalPublic
from archive.cases import services as cases
from archive.cases.models import (
    CaseKind,
    CaseOfficerPublic,
    CasePublic,
    CaseStatus,
    DocumentKind,
    LinkPublic,
    RecordPublic,
    Stage,
    Timeline,
)
from archive.config import get_settings
from archive.coverage import logic as coverage_logic
from archive.coverage import services as coverage
from archive.coverage.itemlist import MODE_LABELS_EN
from archive.errors import NotFound, TooLarge
from archive.i18n import _
from archive.ingest import attachments
from archive.ingest.attachments import ATTACHMENT_MAX_BYTES
from archive.legal.catalogue import default_catalogue
from archive.localtime import LocalDateTime

router = APIRouter(prefix="/api/v1", tags=["cases"])
pages = APIRouter(tags=["review page"])
PAGES = Path(__file__).resolve().parents[1] / "pages"

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _body_limit(request: Request) -> None:
    """Refuse a huge body before it is read: a record body is bounded in characters, and JSON spends
    at most 6 bytes on one (\\uXXXX)."""
    limit = get_settings().record_body_max_chars * 6 + 64 * 1024
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(
            _("request body of {length} bytes is over the limit of {limit} bytes").format(
                length=length, limit=limit
            )
        )


BodyLimit = Depends(_body_limit)


class CaseCreate(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    kind: CaseKind
    stage: Stage = Stage.FILING
    status: CaseStatus = CaseStatus.OPEN
    agency: str = Field(default="default", pattern=_NAME)
    reviewers: list[Annotated[str, Field(pattern=_NAME)]] = Field(default_factory=list, max_length=100)


class CaseList(BaseModel):
    items: list[CasePublic]
    total: int


class Reviewers(BaseModel):
    reviewers: list[Annotated[str, Field(pattern=_NAME)]] = Field(max_length=100)


class RecordCreate(BaseModel):
    stage: Stage
    doc_kind: DocumentKind
    author: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=500)
    officers: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)
    # Typed by people: a time without an offset is the agency's local time (archive.localtime).
    occurred_from: LocalDateTime
    occurred_to: LocalDateTime
    body: str
    attachments: list[Annotated[str, Field(max_length=36)]] = Field(default_factory=list, max_length=100)
    # Whole-process recording (issue 13): the activity of the recording-item list this record documents,
    # and the officer's reason for recording it in text alone where the list allows that.
    activity: str | None = Field(default=None, max_length=64)
    no_recording_reason: str = Field(default="", max_length=2000)

    def to_input(self) -> cases.RecordInput:
        return cases.RecordInput(**self.model_dump(exclude={"activity", "no_recording_reason"}))


class RecordCreated(BaseModel):
    record: RecordPublic
    linked_media: list[str]


class LinkCreate(BaseModel):
    media_id: str = Field(max_length=36)
    reason: str = Field(min_length=1, max_length=2000)


class Unlink(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Relinked(BaseModel):
    linked_media: list[str]


@router.post("/cases", response_model=CasePublic, status_code=201, dependencies=[BodyLimit])
def create_case(body: CaseCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> CasePublic:
    """Open a case (records managers and admins). The number is unique per agency."""
    case = cases.create_case(session, user, cases.CaseInput(**body.model_dump()), addr=addr)
    return cases.case_public(session, case)


@router.get("/cases", response_model=CaseList)
def list_cases(
    session: SessionDep,
    user: CurrentUser,
    number: str | None = None,
    officer: str | None = None,
    since: LocalDateTime | None = None,
    until: LocalDateTime | None = None,
    stage: Stage | None = None,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CaseList:
    """Cases the caller may see, by number, officer, date range (a record's window overlaps it), stage."""
    rows, total = cases.find_cases(
        session,
        user,
        cases.CaseQuery(number, officer, since, until, stage, status, kind, limit, offset),
    )
    return CaseList(items=[cases.case_public(session, c) for c in rows], total=total)


@router.get("/cases/{case_id}", response_model=CasePublic)
def get_case(case_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> CasePublic:
    return cases.case_public(session, cases.view_case(session, user, case_id, addr=addr))


class CaseUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    stage: Stage | None = None
    status: CaseStatus | None = None


@router.patch("/cases/{case_id}", response_model=CasePublic)
def update_case(
    case_id: str, body: CaseUpdate, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> CasePublic:
    """Move a case to another procedural stage, close or reopen it, retitle it (records managers,
    admins). Logged as ``case.update`` with the values before and after."""
    change = cases.CaseChange(title=body.title, stage=body.stage, status=body.status)
    return cases.case_public(session, cases.update_case(session, user, case_id, change, addr=addr))


@router.put("/cases/{case_id}/reviewers", response_model=CasePublic)
def set_reviewers(
    case_id: str, body: Reviewers, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> CasePublic:
    return cases.case_public(session, cases.set_reviewers(session, user, case_id, body.reviewers, addr=addr))


@router.post(
    "/cases/{case_id}/records", response_model=RecordCreated, status_code=201, dependencies=[BodyLimit]
)
def add_record(
    case_id: str,
    body: RecordCreate,
    session: SessionDep,
    user: CurrentUser,
    keyring: KeyringDep,
    addr: ClientAddr,
) -> RecordCreated:
    """Add a text record; media of its officers overlapping its window (+- the buffer) are linked."""
    s = get_settings()
    rec, linked = coverage.write_record(
        session,
        user,
        keyring,
        case_id,
        body.to_input(),
        activity=body.activity,
        no_recording_reason=body.no_recording_reason,
        addr=addr,
        buffer_s=s.autolink_buffer_s,
        max_body=s.record_body_max_chars,
        max_window_s=s.autolink_max_window_s,
    )
    return RecordCreated(record=cases.record_public(rec), linked_media=linked)


@router.post(
    "/cases/{case_id}/records/{record_id}/versions",
    response_model=RecordCreated,
    status_code=201,
    dependencies=[BodyLimit],
)
def add_version(
    case_id: str,
    record_id: str,
    body: RecordCreate,
    session: SessionDep,
    user: CurrentUser,
    keyring: KeyringDep,
    addr: ClientAddr,
) -> RecordCreated:
    """Edit a record: stores the next version; every earlier version stays readable."""
    s = get_settings()
    rec, linked = coverage.write_record(
        session,
        user,
        keyring,
        case_id,
        body.to_input(),
        activity=body.activity,
        no_recording_reason=body.no_recording_reason,
        record_id=record_id,
        addr=addr,
        buffer_s=s.autolink_buffer_s,
        max_body=s.record_body_max_chars,
        max_window_s=s.autolink_max_window_s,
    )
    return RecordCreated(record=cases.record_public(rec), linked_media=linked)


class AttachmentCreated(BaseModel):
    media_id: str
    sha256: str
    size: int
    state: str


@router.post(
    "/cases/{case_id}/attachments",
    response_model=AttachmentCreated,
    status_code=201,
    max_body_size=ATTACHMENT_MAX_BYTES,
)
async def upload_attachment(
    case_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    store: StoreDep,
    addr: ClientAddr,
    dispatcher: DispatcherDep,
    filename: Annotated[str, Query(min_length=1, max_length=255)],
    sha256: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$")] = None,
) -> AttachmentCreated:
    """Archive a scan or PDF for a case: the request body is the file, ``Content-Type`` its type.
    The original goes to the originals bucket and through the same verify (re-read from S3 and
    compared with ``sha256`` if you declare it, else with the digest the API computed while
    receiving) -> probe -> derive -> sign pipeline as a recording; it is linked to the case at once.
    Name the returned ``media_id`` in a record's ``attachments``."""
    length = request.headers.get("content-length")
    content_type = (request.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()
    item = await attachments.receive_attachment(
        session,
        store,
        dispatcher,
        user,
        case_id,
        request.stream(),
        filename=filename,
        content_type=content_type,
        declared_sha256=sha256,
        content_length=int(length) if length is not None and length.isdigit() else None,
        part_size=get_settings().upload_part_bytes,
        client_addr=addr,
    )
    return AttachmentCreated(media_id=item.id, sha256=item.sha256, size=item.size, state=item.state)


@router.get("/cases/{case_id}/records", response_model=list[RecordPublic])
def list_records(
    case_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    all_versions: bool = False,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> list[RecordPublic]:
    """A case's records. Restricted ones the caller holds a grant for are listed with ``purpose``."""
    return cases.read_records(session, user, case_id, all_versions=all_versions, addr=addr, purpose=purpose)


@router.get("/cases/{case_id}/records/{record_id}", response_model=list[RecordPublic])
def record_versions(
    case_id: str,
    record_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> list[RecordPublic]:
    """Every version of one record, oldest first. A restricted record needs a grant and ``purpose``."""
    return cases.read_record_versions(session, user, case_id, record_id, addr=addr, purpose=purpose)


@router.get("/cases/{case_id}/media", response_model=list[LinkPublic])
def list_links(
    case_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    include_unlinked: bool = False,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> list[LinkPublic]:
    """A case's links. Restricted recordings the caller holds a grant for are listed with ``purpose``."""
    return cases.read_links(
        session, user, case_id, include_closed=include_unlinked, addr=addr, purpose=purpose
    )


@router.post("/cases/{case_id}/media", response_model=LinkPublic, status_code=201)
def link(
    case_id: str, body: LinkCreate, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> LinkPublic:
    """Link a media item by hand, with a reason."""
    return cases.link_public(cases.link_media(session, user, case_id, body.media_id, body.reason, addr=addr))


@router.post("/cases/{case_id}/media/{media_id}/unlink", response_model=ApprovalPublic, status_code=202)
def unlink(
    case_id: str, media_id: str, body: Unlink, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> ApprovalPublic:
    """Ask to unlink a media item, with a reason (202: the approval request). A second person, a
    records manager or an administrator, approves it at ``POST /api/v1/approvals/{id}/approve``; then
    the link closes and the auto-link rule will not link it to this case again."""
    return approvals.public(cases.unlink_media(session, user, case_id, media_id, body.reason, addr=addr))


@router.post("/cases/{case_id}/media/{media_id}/confirm", response_model=LinkPublic)
def confirm_link(
    case_id: str, media_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> LinkPublic:
    """Confirm a pending auto-link (records managers and admins, who may see the media): the case's
    reviewers see the recording from now on."""
    return cases.link_public(cases.confirm_link(session, user, case_id, media_id, addr=addr))


class OfficerOnCase(BaseModel):
    badge: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/cases/{case_id}/officers", response_model=list[CaseOfficerPublic])
def list_case_officers(case_id: str, session: SessionDep, user: CurrentUser) -> list[CaseOfficerPublic]:
    """The officers on a case: the auto-link rule links recordings of these officers only."""
    return cases.case_officers(session, user, case_id)


@router.post("/cases/{case_id}/officers", response_model=list[CaseOfficerPublic], status_code=201)
def add_case_officer(
    case_id: str, body: OfficerOnCase, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> list[CaseOfficerPublic]:
    """Put an officer on a case (records managers and admins)."""
    return cases.add_case_officer(session, user, case_id, body.badge, body.reason, addr=addr)


@router.post("/cases/{case_id}/officers/{badge}/remove", response_model=list[CaseOfficerPublic])
def remove_case_officer(
    case_id: str, badge: str, body: Unlink, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> list[CaseOfficerPublic]:
    """Take an officer off a case, with a reason (records managers and admins)."""
    return cases.remove_case_officer(session, user, case_id, badge, body.reason, addr=addr)


@router.post("/cases/{case_id}/autolink", response_model=Relinked)
def autolink(case_id: str, session: SessionDep, user: CurrentUser, addr: ClientAddr) -> Relinked:
    """Apply every record's auto-link rule again (for media docked after the record was written)."""
    made = cases.relink_case(session, user, case_id, buffer_s=get_settings().autolink_buffer_s, addr=addr)
    return Relinked(linked_media=made)


@router.get("/cases/{case_id}/timeline", response_model=Timeline)
def timeline(
    case_id: str,
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    via: Annotated[str, Query(pattern="^(api|page)$")] = "api",
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
    coverage: bool = False,
) -> Timeline:
    """Text records and linked media in time order, media on the corrected clock. Restricted items the
    caller holds a grant for are on it with ``purpose`` (each a logged read). ``coverage=true``: each
    record carries its coverage (status and gaps), as ``GET /cases/{id}/coverage`` answers it."""
    return cases.timeline(session, user, case_id, addr=addr, via=via, purpose=purpose, coverage=coverage)


@router.get("/records/search", response_model=list[RecordPublic])
def search(
    session: SessionDep,
    user: CurrentUser,
    addr: ClientAddr,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    purpose: Annotated[str | None, Query(max_length=2000)] = None,
) -> list[RecordPublic]:
    """Full-text search over record versions in the cases the caller may see (every word must match);
    restricted records the caller holds a grant for are found with ``purpose``."""
    return cases.search(session, user, q, limit=limit, addr=addr, purpose=purpose)


# --------------------------------------------------------------------------- review session + page


@router.post(
    "/session",
    status_code=204,
    tags=["review page"],
    responses={
        204: {
            "description": "The streaming cookie is set (HttpOnly, SameSite=Strict, Path=/api/v1/media)",
            "headers": {"Set-Cookie": header("`custody_view=...`", required=True)},
        }
    },
)
def open_session(
    request: Request, response: Response, session: SessionDep, user: CurrentUser, addr: ClientAddr
) -> None:
    """Trade the bearer token for the streaming cookie the page's players need (see api/viewsession.py)."""
    ttl = get_settings().view_session_ttl_s
    value = viewsession.create(request.app.state.redis, user.name, ttl, request.state.credential)
    response.set_cookie(
        viewsession.COOKIE,
        value,
        max_age=ttl,
        path=viewsession.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    # Pages load before their script has the token: this cookie carries the user's own language
    # to them (api/i18n.py). No setting: the browser's Accept-Language decides.
    remember_language(request, response, user.language)
    accounts.record_view_session(session, user, ttl, client_addr=addr)


# The page holds no data: it is a shell whose script asks the API (with the bearer token) for the
# timeline. Scripts only from this origin, nothing inline, so text that slipped past escaping cannot run.
def _page_headers() -> dict[str, str]:
    # Videos and posters stream from S3 on presigned URLs (media ?via=storage): the one S3 origin
    # the browsers reach is the only other source media may come from.
    s3 = get_settings().public_s3_origin()
    return {
        **PAGE_HEADERS,
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' {s3}; "
            f"media-src 'self' {s3}; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        ),
    }


def _review_texts() -> dict[str, str]:
    """What review.js writes, in the request's language."""
    return {
        "play": _("Play all"),
        "pause": _("Pause all"),
        "page_title": _("Case {number} - Custody"),
        "case_title": _("Case {number}: {title}"),
        "case_facts": _("{kind} · stage: {stage} · {status}"),
        "reviewers": _("reviewers: {names}"),
        "officer_device": _("officer {officer} · device {device}"),
        "time_unknown": _("recording time unknown"),
        "device_clock_said": _("device clock said {time} ({source})"),
        "source_metadata": _("recording metadata"),
        "source_file": _("file time"),
        "version": _("version {version}"),
        "author": _("author: {author}"),
        "officers": _("officers: {officers}"),
        "attachments": _("attachments: {names}"),
        "list_sep": _(", "),
        "cannot_open": _("Cannot open case: {error}"),
        # the legal review panel (法制审核)
        "legal_overdue": _("Overdue"),
        "legal_overdue_days": _("Overdue by {days} working days"),
        "legal_rule": _("Legal review required: catalogue v{version}, rule {rule} ({label})"),
        "legal_rule_also": _(" (also: {rules})"),
        "legal_unclassified": _(
            "No proposed decision yet: the catalogue classifies the case when one is submitted"
        ),
        "legal_no_rule": _("Legal review not required: no rule of catalogue v{version} matches"),
        "legal_due": _("Review due by {date} (working days, agency calendar)"),
        "legal_due_weekdays": _("counting Monday-Friday only: {date}"),
        "legal_higher_authority": _("reviewed by the higher authority"),
        "legal_submission": _("Proposed decision v{version}: {kind}"),
        "legal_amounts": _("amounts: {amounts}"),
        "legal_amount": _("{name} {value} yuan"),
        "legal_basis": _("legal basis: {basis}"),
        "legal_submitted": _("submitted by {user} at {time}"),
        "legal_facts": _("facts: {facts}"),
        "answer_pass": _("pass"),
        "answer_fail": _("fail"),
        "answer_n/a": _("not applicable"),
        "legal_answered_by": _("({user}, {time})"),
        "legal_opinion": _("Opinion: {outcome} - {reasons} ({user}, {time})"),
        "legal_authority": _("answered by {authority}, {user}"),
        "legal_collective": _("Collective discussion: {reason} (asked by {user}, {time})"),
        "legal_collective_outcome": _("{outcome}: {reasons}"),
        "legal_collective_pending": _("(not yet decided)"),
        # coverage of the records by recordings, and signatures
        "signer_archive": _("the archive (v{version})"),
        "signer_person": _("{signer} (v{version})"),
        "time_span": _("{start} → {end}"),
        "coverage_window": _("{title}: {status}"),
        "coverage_gap": _("gap {span} ({seconds} s)"),
        "coverage_activity": _("{activity} ({mode})"),
        "coverage_no_activity": _("no activity stated"),
        "coverage_reason": _("no recording, reason: {reason}"),
        "coverage_gaps": _("gaps: {gaps}"),
        "signed_by": _("signed by {signers}"),
        "coverage_counts": _("Coverage (item list v{version}, tolerance {tolerance} s):"),
    }


def _review_labels() -> dict[str, dict[str, str]]:
    """The names review.js shows for keys the API returns, in the request's language."""
    chinese = i18n.current_language() == "zh-CN"
    labels = {d: vocabulary.labels(d) for d in ("stage", "doc_kind", "case_kind", "case_status")}
    kinds = default_catalogue().decision_kinds
    labels["decision_kind"] = {k: (v.label_zh if chinese else v.label) for k, v in kinds.items()}
    labels["coverage_status"] = {k: _(v) for k, v in coverage_logic.STATUS_LABELS_EN.items()}
    labels["coverage_mode"] = {k: _(v) for k, v in MODE_LABELS_EN.items()}
    return labels


@pages.get("/cases/{case_id}", response_class=HTMLResponse)
def review_page(case_id: str) -> HTMLResponse:
    """The review page (its view is logged when its script reads the timeline: case.timeline via=page),
    served in the reader's language with times in the agency's zone."""
    # With single sign-on configured, the token form also offers the agency's sign-in, back to this page.
    sso_next = f"/cases/{case_id}" if get_settings().oidc_issuer else ""
    response = render_page("case.html", texts=_review_texts(), labels=_review_labels(), sso_next=sso_next)
    response.headers["Content-Security-Policy"] = _page_headers()["Content-Security-Policy"]
    return response


@pages.get("/pages/{name}", include_in_schema=False)
def page_asset(name: str) -> FileResponse:
    assets = {
        "review.js": "text/javascript",
        "clock.js": "text/javascript",
        "language.js": "text/javascript",
        "review.css": "text/css",
    }
    if name not in assets:
        raise NotFound(_("no page asset {name}").format(name=name))
    return FileResponse(PAGES / name, media_type=assets[name], headers=_page_headers())
