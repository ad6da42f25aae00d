"""The yearly report: "每年1月31日前公开…上年度行政执法总体情况有关数据" (seed 000).

:func:`build` counts, for one local calendar year, decisions by category and their outcomes,
publication timeliness, how the year's decisions have been carried out (履行情况), the random
inspections of the year by result (双随机抽查结果), cases, legal reviews, recordings per activity and the
roster; the per-decision
rows it counts from are part of the body, so anyone can check every total against them. The body is
signed with the archive's Ed25519 keyring exactly as manifests are (RFC 8785 bytes), stored as a
draft version, and published by a publisher. A beat task drafts it on the first days of January and
warns from the 25th while it is unpublished.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from archive import events
from archive.access import Permission, actor, authorize
from archive.accounts.models import User
from archive.cases.models import Case, CaseMedia, Stage, TextRecord
from archive.clock import Clock, as_utc, utcnow
from archive.config import get_settings
from archive.context import Dispatcher
from archive.errors import NotFound
from archive.i18n import _
from archive.media.models import Media, MediaState
from archive.models import Event, Outcome
from archive.publicity import webhooks
from archive.publicity.decisions import timeliness
from archive.publicity.errors import DigestMismatch, WrongState
from archive.publicity.models import (
    CATEGORY_ZH,
    WITHDRAWAL_ZH,
    AnnualReport,
    Decision,
    DecisionCategory,
    DecisionPerformance,
    DecisionState,
    InspectionOutcome,
    InspectionState,
    PerformanceStatus,
    QualificationFlag,
    RandomInspection,
    ReportPublic,
    ReportState,
    Timeliness,
)
from archive.publicity.services import log, sha256_json, today
from archive.signing import Keyring, Signature

SCHEMA = "custody.publicity.annual-report/1"
UNLINKED = "not-linked"
BY_HAND = "linked-by-hand"
PUBLISH_BY = (1, 31)  # month, day: the report is due by 31 January of the next year
WARN_FROM = (1, 25)


def _bounds(year: int, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return (
        datetime(year, 1, 1, tzinfo=zone).astimezone(UTC),
        datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC),
    )


def _decision_rows(session: Session, year: int, as_of: date) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Decision)
        .where(col(Decision.decided_on) >= date(year, 1, 1), col(Decision.decided_on) <= date(year, 12, 31))
        .order_by(col(Decision.decided_on), col(Decision.ref))
    ).all()
    out = []
    for d in rows:
        ever_public = d.published_on is not None
        out.append(
            {
                # Only decisions the public has seen are named; the others are counted, not named.
                "ref": d.ref if ever_public else None,
                "category": str(d.category),
                "decided_on": d.decided_on.isoformat(),
                "deadline": d.deadline.isoformat(),
                # counted across a year the calendar did not know yet: provisional (docs/publicity.md)
                "deadline_provisional": d.deadline_provisional,
                "published_on": d.published_on.isoformat() if d.published_on else None,
                "timeliness": str(timeliness(d, as_of)),
                "state": str(d.state),
                "withdrawal_ground": str(d.withdrawal_ground) if d.withdrawal_ground else None,
            }
        )
    return out


def _tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of a set of decision rows (the same function makes every total and subtotal)."""
    t = Counter(r["timeliness"] for r in rows)
    grounds = Counter(r["withdrawal_ground"] for r in rows if r["state"] == DecisionState.WITHDRAWN)
    return {
        "decisions": len(rows),
        "published": sum(1 for r in rows if r["published_on"] is not None),
        "in_force_published": sum(1 for r in rows if r["state"] == DecisionState.PUBLISHED),
        "withdrawn": sum(grounds.values()),
        "withdrawn_by_ground": {g: grounds.get(str(g), 0) for g in WITHDRAWAL_ZH},
        "timeliness": {str(k): t.get(str(k), 0) for k in Timeliness},
    }


def _cases(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    rows = session.exec(
        select(Case.kind, func.count())
        .where(col(Case.created_at) >= start, col(Case.created_at) < end)
        .group_by(col(Case.kind))
    ).all()
    by_kind = {str(k): int(n) for k, n in rows}
    return {"opened": sum(by_kind.values()), "opened_by_kind": by_kind}


def _legal_reviews(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    # Legal review (issue 12) logs every step as a ``legal.*`` custody event; counting those keeps this
    # report independent of its tables.
    rows = session.exec(
        select(Event.action, func.count())
        .where(col(Event.action).like("legal.%"), col(Event.at) >= start, col(Event.at) < end)
        .group_by(col(Event.action))
    ).all()
    by_action = {a: int(n) for a, n in rows}
    return {"events": sum(by_action.values()), "by_action": dict(sorted(by_action.items()))}


def _recordings(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """Recordings received in the year per activity: the procedural stage of the record whose rule
    linked them (a recording linked from several stages counts in each), linked by hand, or not linked."""
    media = {
        m
        for m, state in session.exec(
            select(Media.id, Media.state).where(col(Media.received_at) >= start, col(Media.received_at) < end)
        ).all()
        if MediaState(state).archived or state == MediaState.DELETED
    }
    per_stage: dict[str, set[str]] = defaultdict(set)
    linked: set[str] = set()
    if media:
        links = session.exec(
            select(CaseMedia.media_id, CaseMedia.record_id).where(
                col(CaseMedia.media_id).in_(media), col(CaseMedia.unlinked_at).is_(None)
            )
        ).all()
        record_ids = {r for _m, r in links if r}
        stages = dict(
            session.exec(
                select(TextRecord.record_id, TextRecord.stage).where(
                    col(TextRecord.record_id).in_(record_ids)
                )
            ).all()
        )
        for m, r in links:
            linked.add(m)
            per_stage[str(stages[r]) if r in stages else BY_HAND].add(m)
    by_activity = {str(s): len(per_stage.get(str(s), set())) for s in Stage}
    by_activity[BY_HAND] = len(per_stage.get(BY_HAND, set()))
    by_activity[UNLINKED] = len(media - linked)
    return {"received": len(media), "by_activity": by_activity}


NOT_RECORDED = "not-recorded"  # a decision of the year with no performance stated as of the report


def _performance(session: Session, year: int, as_of: date) -> dict[str, Any]:
    """The year's decisions by how they had been carried out as of ``as_of``: the newest statement
    established on or before that day (``archive.publicity.performance``); withdrawn decisions apart.
    One joined query (no list of ids: a busy year stays within the databases' parameter limits)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    of_year = (col(Decision.decided_on) >= first) & (col(Decision.decided_on) <= last)
    in_force = of_year & (col(Decision.state) != DecisionState.WITHDRAWN)
    decisions_in_force = session.exec(select(func.count()).select_from(Decision).where(in_force)).one()
    status: dict[str, tuple[int, str]] = {}  # decision -> (version, status) of its newest statement
    for d, version, st in session.exec(
        select(DecisionPerformance.decision_id, DecisionPerformance.version, DecisionPerformance.status)
        .join(Decision, col(Decision.id) == col(DecisionPerformance.decision_id))
        .where(in_force, col(DecisionPerformance.as_of) <= as_of)
    ).all():
        if d not in status or version > status[d][0]:
            status[d] = (version, str(st))
    counts = Counter(st for _v, st in status.values())
    by_status = {str(k): counts.get(str(k), 0) for k in PerformanceStatus}
    by_status[NOT_RECORDED] = int(decisions_in_force) - len(status)
    return {"decisions_in_force": int(decisions_in_force), "by_status": by_status}


def _inspections(session: Session, year: int) -> dict[str, Any]:
    """Random inspections carried out in the year and published, by result; those taken down apart."""
    rows = session.exec(
        select(RandomInspection.result, RandomInspection.state).where(
            col(RandomInspection.inspected_on) >= date(year, 1, 1),
            col(RandomInspection.inspected_on) <= date(year, 12, 31),
            col(RandomInspection.state) != InspectionState.DRAFT,
        )
    ).all()
    published = Counter(str(r) for r, state in rows if state == InspectionState.PUBLISHED)
    return {
        "published": sum(published.values()),
        "by_result": {str(k): published.get(str(k), 0) for k in InspectionOutcome},
        "withdrawn": sum(1 for _r, state in rows if state == InspectionState.WITHDRAWN),
    }


def build(session: Session, year: int, *, as_of: date, generated_at: datetime) -> dict[str, Any]:
    s = get_settings()
    start, end = _bounds(year, s.timezone)
    rows = _decision_rows(session, year, as_of)
    by_category = {
        str(c): {"label": CATEGORY_ZH[c], **_tally([r for r in rows if r["category"] == c])}
        for c in DecisionCategory
    }
    flags = session.exec(
        select(func.count())
        .select_from(QualificationFlag)
        .where(col(QualificationFlag.created_at) >= start, col(QualificationFlag.created_at) < end)
    ).one()
    from archive.publicity.roster import public_roster

    return {
        "schema": SCHEMA,
        "year": year,
        "authority": s.publicity_authority,
        "timezone": s.timezone,
        "as_of": as_of.isoformat(),
        "generated_at": as_utc(generated_at).isoformat().replace("+00:00", "Z"),
        "totals": _tally(rows),
        "by_category": by_category,
        "performance": _performance(session, year, as_of),
        "random_inspections": _inspections(session, year),
        "cases": _cases(session, start, end),
        "legal_reviews": _legal_reviews(session, start, end),
        "recordings": _recordings(session, start, end),
        "qualification": {
            "certified_staff_at_year_end": len(public_roster(session, date(year, 12, 31))),
            "recordings_by_unqualified_staff": int(flags),
        },
        "rows": rows,
    }


def draft(
    session: Session, user: User | None, year: int, keyring: Keyring, *, clock: Clock = utcnow
) -> AnnualReport:
    """A new signed draft version (the beat task and the CLI act as ``system:publicity``)."""
    if user is not None:
        authorize(user, Permission.PUBLISH)
    now = clock()
    as_of = today(clock)
    if year >= as_of.year:
        raise WrongState(_("the year {year} is not over").format(year=year))
    body = build(session, year, as_of=as_of, generated_at=now)
    sig = keyring.sign(body)
    latest = session.exec(select(func.max(AnnualReport.version)).where(AnnualReport.year == year)).one()
    who = actor(user) if user is not None else "system:publicity"
    row = AnnualReport(
        year=year,
        version=int(latest or 0) + 1,
        body=body,
        signature=sig.signature_b64,
        key_id=sig.key_id,
        created_by=who,
        created_at=now,
    )
    session.add(row)
    session.flush()
    log(
        session,
        who,
        "publicity.report.draft",
        "report",
        f"{year}@{row.version}",
        clock=clock,
        sha256=sha256_json(body),
        key_id=sig.key_id,
    )
    return row


def signature_of(r: AnnualReport) -> dict[str, str]:
    return {"algorithm": "ed25519", "key_id": r.key_id, "signature": r.signature}


def verify(r: AnnualReport, keyring: Keyring) -> None:
    keyring.verify(r.body, Signature(r.key_id, r.signature))


def get_version(session: Session, year: int, version: int | None = None) -> AnnualReport:
    stmt = select(AnnualReport).where(AnnualReport.year == year)
    if version is not None:
        stmt = stmt.where(AnnualReport.version == version)
    r = session.exec(stmt.order_by(col(AnnualReport.version).desc())).first()
    if r is None:
        raise NotFound(_("no report for {year}").format(year=year))
    return r


def versions(session: Session, user: User, year: int) -> list[AnnualReport]:
    authorize(user, Permission.PUBLICITY_READ)
    return list(
        session.exec(
            select(AnnualReport).where(AnnualReport.year == year).order_by(col(AnnualReport.version))
        )
    )


def publish(
    session: Session,
    user: User,
    year: int,
    version: int,
    sha256: str,
    keyring: Keyring,
    *,
    dispatcher: Dispatcher | None = None,
    addr: str = "",
    clock: Clock = utcnow,
) -> tuple[AnnualReport, list[str]]:
    authorize(user, Permission.PUBLISH)
    r = get_version(session, year, version)
    if r.state is ReportState.PUBLISHED:
        raise WrongState(_("report {year} version {v} is already published").format(year=year, v=version))
    digest = sha256_json(r.body)
    if sha256.strip().lower() != digest:
        raise DigestMismatch(
            _("the approval names SHA-256 {given}, but the report has {stored}").format(
                given=sha256[:64], stored=digest
            )
        )
    verify(r, keyring)
    r.state, r.published_by, r.published_at = ReportState.PUBLISHED, user.name, clock()
    session.add(r)
    session.flush()
    log(
        session,
        user,
        "publicity.report.publish",
        "report",
        f"{year}@{version}",
        addr=addr,
        clock=clock,
        sha256=digest,
    )
    sent = webhooks.enqueue(
        session,
        "report.published",
        str(year),
        {"year": year, "version": version, "body": r.body, "signature": signature_of(r)},
        dispatcher=dispatcher,
        clock=clock,
    )
    return r, [sent.id] if sent else []


def to_public(r: AnnualReport) -> ReportPublic:
    return ReportPublic(
        year=r.year,
        version=r.version,
        state=r.state,
        body=r.body,
        signature=signature_of(r),
        created_by=r.created_by,
        created_at=r.created_at,
        published_at=r.published_at,
    )


def draft_if_missing(session: Session, keyring: Keyring, *, clock: Clock = utcnow) -> AnnualReport | None:
    """The beat's January task: draft last year's report unless a version exists."""
    year = today(clock).year - 1
    exists = session.exec(select(AnnualReport.id).where(AnnualReport.year == year)).first()
    return None if exists else draft(session, None, year, keyring, clock=clock)


def warn_if_unpublished(session: Session, *, clock: Clock = utcnow) -> str | None:
    """From 25 January: a warning (logged in the custody log) while last year's report is unpublished."""
    on = today(clock)
    if (on.month, on.day) < WARN_FROM or (on.month, on.day) > PUBLISH_BY:
        return None
    year = on.year - 1
    published = session.exec(
        select(AnnualReport.id).where(AnnualReport.year == year, AnnualReport.state == ReportState.PUBLISHED)
    ).first()
    if published:
        return None
    message = _("the {year} enforcement report is not published; it is due by 31 January {next}").format(
        year=year, next=year + 1
    )
    events.record(
        session,
        actor="system:publicity",
        action="publicity.report.overdue-warning",
        subject_type="report",
        subject_id=str(year),
        outcome=Outcome.FAILED,
        details={"message": message, "on": on.isoformat()},
        clock=clock,
    )
    return message


# --------------------------------------------------------------------------- readable page


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _heading(level: int, text: str) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def render_html(body: dict[str, Any]) -> str:
    """The report's readable sections (an HTML fragment; every value escaped), in the active language;
    the signed body itself stays as it was signed."""
    from archive import localtime, vocabulary

    e = html.escape
    tl = list(Timeliness)
    head = [
        _("Category"),
        _("Decisions"),
        _("Published"),
        _("Withdrawn"),
        *[vocabulary.label("timeliness", t) for t in tl],
    ]
    total = _("Total")
    cats = [
        [
            vocabulary.label("publicity_category", k)
            if vocabulary.has("publicity_category", k)
            else v["label"],
            v["decisions"],
            v["published"],
            v["withdrawn"],
            *[v["timeliness"][str(t)] for t in tl],
        ]
        for k, v in body["by_category"].items()
    ]
    t = body["totals"]
    cats.append(
        [total, t["decisions"], t["published"], t["withdrawn"], *[t["timeliness"][str(x)] for x in tl]]
    )
    rec = body["recordings"]["by_activity"]
    other = {UNLINKED: _("not linked to a case"), BY_HAND: _("linked by hand, no stage")}
    activity = [
        [vocabulary.label("stage", k) if k in set(Stage) else other.get(k, k), n] for k, n in rec.items()
    ]
    withdrawn = [[vocabulary.label("withdrawal_ground", g), n] for g, n in t["withdrawn_by_ground"].items()]
    as_of = _("figures as of {date}").format(date=body["as_of"])
    if body.get("authority"):
        as_of = f"{body['authority']} · {as_of}"
    generated = ""
    if body.get("generated_at"):
        when = datetime.fromisoformat(str(body["generated_at"]).replace("Z", "+00:00"))
        zone = str(body.get("timezone") or get_settings().timezone)
        generated = " · " + _("generated {time}").format(time=localtime.format_local(when, zone=zone))
    parts = [
        _heading(2, _("Enforcement in {year}: the yearly report").format(year=body["year"])),
        f"<p>{e(as_of + generated)}</p>",
        _heading(3, _("Enforcement decisions")),
        _table(head, cats),
        _heading(3, _("Withdrawn decisions")),
        _table([_("Ground"), _("Number")], withdrawn),
        *_a10_sections(body),
        _heading(3, _("Cases")),
        _table([_("Cases opened")], [[body["cases"]["opened"]]]),
        _heading(3, _("Legal review")),
        _table([_("Entries")], [[body["legal_reviews"]["events"]]]),
        _heading(3, _("Audio-video recordings (by stage)")),
        _table([_("Stage"), _("Number")], [*activity, [total, body["recordings"]["received"]]]),
        _heading(3, _("Enforcement staff")),
        _table(
            [_("Certified staff at year end"), _("Recordings by staff without a valid certificate")],
            [
                [
                    body["qualification"]["certified_staff_at_year_end"],
                    body["qualification"]["recordings_by_unqualified_staff"],
                ]
            ],
        ),
    ]
    return "\n".join(parts)


def _a10_sections(body: dict[str, Any]) -> list[str]:
    """Performance and random inspections (A10); reports signed before they were counted have neither."""
    from archive import vocabulary

    out = []
    if "performance" in body:
        perf = body["performance"]["by_status"]
        rows = [
            [vocabulary.label("performance_status", k) if k != NOT_RECORDED else _("not stated"), n]
            for k, n in perf.items()
        ]
        out += [
            _heading(3, _("How the year's decisions were carried out")),
            _table(
                [_("Performance"), _("Number")],
                [*rows, [_("Total"), body["performance"]["decisions_in_force"]]],
            ),
        ]
    if "random_inspections" in body:
        ins = body["random_inspections"]
        rows = [[vocabulary.label("inspection_result", k), n] for k, n in ins["by_result"].items()]
        out += [
            _heading(3, _("Random inspections")),
            _table(
                [_("Result"), _("Number")],
                [*rows, [_("Published"), ins["published"]], [_("Withdrawn"), ins["withdrawn"]]],
            ),
        ]
    return out


def page_html(body: dict[str, Any], key_id: str, signature: str) -> str:
    """The report as a document of its own (the CLI writes it beside the signed JSON): in the active
    language, with the Chinese font stack declared so it prints in Chinese wherever it is opened."""
    from archive import i18n

    e = html.escape
    title = _("Enforcement in {year}: the yearly report").format(year=body["year"])
    signed = _("Signed (Ed25519) with key {key}").format(key=key_id)
    return (
        f"<!doctype html><html lang='{e(i18n.current_language())}'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{e(title)}</title>"
        f"<style>body{{font-family:{i18n.CJK_SERIF};max-width:60em;margin:2em auto;line-height:1.6}}"
        "table{border-collapse:collapse;margin:0.5em 0}th,td{border:1px solid #999;padding:2px 8px}"
        "@page{margin:2cm}</style></head><body>"
        f"{render_html(body)}"
        f"<p>{e(signed)}: {e(signature)}</p></body></html>\n"
    )
