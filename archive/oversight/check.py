"""The early-warning check (对执法漏洞、瑕疵的自动发现和预警) over the whole archive.

Built for a large archive (10^6 records and 10^6 recordings in about a minute): cases are read in
batches, only the columns the rule needs, as plain tuples; each recording's span still comes from the
one clock-correction rule (``archive.cases.services.corrected_span``), fed a light row instead of an ORM
object (it reads only ``probe``, ``recorded_at`` and ``clock_offset_s``). Warnings are written in bulk
under one run, so ``GET /api/v1/oversight/warnings`` reads a finished snapshot and never recomputes.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, and_, exists, insert, select, type_coerce
from sqlalchemy import cast as cast_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from archive import events
from archive.cases import services as cases
from archive.cases.models import Case, CaseMedia, LinkSource, TextRecord
from archive.clock import Clock, as_utc, utcnow
from archive.coverage import logic
from archive.coverage.itemlist import ItemList, Mode
from archive.coverage.models import RecordActivity
from archive.coverage.services import NOT_RECORDINGS, current_list
from archive.media.models import Media, MediaState
from archive.oversight import check_sql
from archive.oversight.models import OversightRun, OversightWarning, WarningKind
from archive.workdays import provisional
from archive.workdays.services import current_calendar

SYSTEM_OVERSIGHT = "system:oversight"
log = logging.getLogger("custody.oversight")
STREAM_ROWS = 20000
INSERT_BATCH = 20000
# Plain DateTime: the driver's value as is (as_utc settles the zone), without a per-row converter.
_TIME = DateTime(timezone=True)
_WARNING_COLUMNS = ("run_id", "kind", "subject_type", "subject_id", "case_id", "agency", "officer", "details")


@dataclass(frozen=True, slots=True)
class _SpanRow:
    """What corrected_span reads of a media row."""

    probe: dict[str, Any] | None
    recorded_at: datetime | None
    clock_offset_s: float


# A hook returning, for officer badges, why each has no valid certificate (absent: valid). The
# publicity roster (issue 14) provides it when installed; without a roster nothing is warned.
CertificateCheck = Callable[[Session, Iterable[str], date], dict[str, str]]


def publicity_certificate_check() -> CertificateCheck | None:
    try:
        roster: Any = importlib.import_module("archive.publicity.roster")
    except ImportError:
        return None

    def check(session: Session, badges: Iterable[str], on: date) -> dict[str, str]:
        if not roster.roster_in_use(session):
            return {}
        out: dict[str, str] = {}
        for badge in sorted(set(badges)):
            ok, why = roster.qualification(session, badge, on)
            if not ok:
                out[badge] = str(why)
        return out

    return check


@dataclass
class _Stat:
    records: int = 0
    required: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    recordings: int = 0
    per_activity: Counter[str] = field(default_factory=Counter)


def run_check(
    session: Session,
    *,
    unlinked_days: int,
    timezone: str = "Asia/Shanghai",
    clock: Clock = utcnow,
    certificate_check: CertificateCheck | None = None,
    actor: str = SYSTEM_OVERSIGHT,
    method: Literal["auto", "python"] = "auto",
) -> OversightRun:
    """Compute every warning and the statistics per unit (the case's agency) and officer; store them
    as one run. Idempotent in effect: a new run supersedes the previous one, which stays on record.

    On PostgreSQL the records' coverage is measured in set-based SQL (``check_sql``); elsewhere, or
    with ``method="python"`` (the equivalence test), one streamed pass in Python. Both apply the rule
    of ``archive.coverage.logic`` to the spans of ``corrected_span``."""
    items = current_list(session)
    started = clock()
    run = OversightRun(started_at=started, item_list_version=items.version)
    session.add(run)
    session.flush()
    run_id = cast(int, run.id)
    pending: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    stats: dict[tuple[str, str], _Stat] = defaultdict(_Stat)
    officers_seen: set[str] = set()

    def warn(kind: WarningKind, subject_type: str, subject_id: str, **kw: Any) -> None:
        counts[kind] += 1
        pending.append(
            {
                "run_id": run_id,
                "kind": kind,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "case_id": kw.get("case_id"),
                "agency": kw.get("agency", ""),
                "officer": kw.get("officer", ""),
                "details": kw.get("details", {}),
            }
        )
        if len(pending) >= INSERT_BATCH:
            flush()

    def flush() -> None:
        if pending:
            _insert_warnings(session, pending)
            pending.clear()

    if session.get_bind().dialect.name == "postgresql" and method != "python":
        try:
            with session.begin_nested():  # a failure leaves nothing of this path behind
                _check_cases_sql(session, items, run_id, counts, stats, officers_seen)
        except DBAPIError as exc:
            # A value the SQL cannot read (a probe fact of an unexpected type, say) must not stop the
            # check: the same rule in Python reads it (slower, and said so in the log).
            log.warning("oversight check: SQL path failed (%s); running the Python path", exc.orig)
            counts.clear()
            stats.clear()
            officers_seen.clear()
            _check_cases(session, items, warn, stats, officers_seen)
    else:
        _check_cases(session, items, warn, stats, officers_seen)
    _check_unlinked(session, started - timedelta(days=unlinked_days), warn, stats, officers_seen)
    check = certificate_check if certificate_check is not None else publicity_certificate_check()
    if check is not None:
        today = started.astimezone(ZoneInfo(timezone)).date()
        for badge, why in sorted(check(session, officers_seen, today).items()):
            warn(WarningKind.NO_CERTIFICATE, "officer", badge, officer=badge, details={"why": why})
    _check_calendar(session, started.astimezone(ZoneInfo(timezone)).date(), warn)
    flush()
    run.finished_at = clock()
    run.counts = {k.value: counts.get(k, 0) for k in WarningKind}
    run.stats = [_stat_row(agency, officer, s) for (agency, officer), s in sorted(stats.items())]
    session.add(run)
    session.flush()
    events.record(
        session,
        actor=actor,
        action="oversight.check",
        subject_type="oversight-run",
        subject_id=str(run_id),
        details={"counts": run.counts, "item_list_version": items.version},
        clock=clock,
    )
    return run


def _check_calendar(session: Session, today: date, warn: Callable[..., None]) -> None:
    """Years the working-day calendar should know by ``today`` and does not (from ``warn_from``, 1
    November by default, for the next year), and the live deadlines that are provisional meanwhile."""
    for w in provisional.year_warnings(current_calendar(session), today):
        warn(
            WarningKind.CALENDAR_YEAR,
            "calendar",
            str(w.year),
            details={"year": w.year, "since": w.since.isoformat(), "command": w.command},
        )
    items = provisional.provisional_items(session)
    agencies = (
        dict(
            session.execute(
                select(col(Case.id), col(Case.agency)).where(col(Case.id).in_({i.case_id for i in items}))
            ).all()
        )
        if items
        else {}
    )
    for i in items:
        warn(
            WarningKind.PROVISIONAL_DEADLINE,
            i.subject_type,
            i.subject_id,
            case_id=i.case_id,
            agency=agencies.get(i.case_id, ""),
            details={
                "domain": i.kind,
                "ref": i.ref,
                "due": i.due.isoformat(),
                "weekdays_due": i.weekdays_due.isoformat() if i.weekdays_due else None,
                "missing_years": i.missing_years,
            },
        )


def _insert_warnings(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: COPY on PostgreSQL (a run may find 10^5 warnings), executemany elsewhere."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY oversight_warnings ({', '.join(_WARNING_COLUMNS)}) FROM STDIN") as cp,
        ):
            for r in rows:
                cp.write_row(
                    [
                        r["run_id"],
                        str(r["kind"]),
                        r["subject_type"],
                        r["subject_id"],
                        r["case_id"],
                        r["agency"],
                        r["officer"],
                        json.dumps(r["details"], ensure_ascii=False),
                    ]
                )
        return
    conn.execute(insert(OversightWarning.__table__), [{**r, "kind": str(r["kind"])} for r in rows])  # type: ignore[attr-defined]


def _check_cases_sql(
    session: Session,
    items: ItemList,
    run_id: int,
    counts: Counter[str],
    stats: dict[tuple[str, str], _Stat],
    officers_seen: set[str],
) -> None:
    res = check_sql.check_cases(session, items, run_id)
    counts.update(res.counts)
    for key, (records, required, statuses) in res.records.items():
        st = stats[key]
        st.records, st.required = records, required
        st.statuses.update(statuses)
    for key, n in res.recordings.items():
        stats[key].recordings = n
    for key, per in res.per_activity.items():
        stats[key].per_activity.update(per)
    officers_seen.update(res.officers)


def _stat_row(agency: str, officer: str, s: _Stat) -> dict[str, Any]:
    covered = s.statuses.get(logic.Status.COVERED, 0)
    return {
        "agency": agency,
        "officer": officer,
        "records": s.records,
        "required": s.required,
        "covered": covered,
        "gaps": s.statuses.get(logic.Status.GAPS, 0),
        "missing": s.statuses.get(logic.Status.MISSING, 0),
        "missing_with_reason": s.statuses.get(logic.Status.MISSING_WITH_REASON, 0),
        "not_required": s.statuses.get(logic.Status.NOT_REQUIRED, 0),
        "coverage_rate": round(covered / s.required, 4) if s.required else None,
        "recordings": s.recordings,
        "recordings_per_activity": dict(sorted(s.per_activity.items())),
    }


_BADGES = re.compile(r'"([^"\\]*)"')


def _officers(raw: Any) -> list[str]:
    """The officers JSON array, read as text: badges are plain ``[A-Za-z0-9._@-]`` strings, so a
    regular expression reads them several times faster than a JSON parser (10^6 rows per run)."""
    if isinstance(raw, list):
        return [str(x) for x in raw]
    return _BADGES.findall(raw or "")


def _by_case(rows: Iterable[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Consecutive rows of one case (the rows come ordered by case id, column 0)."""
    case_id: str | None = None
    group: list[Any] = []
    for row in rows:
        if row[0] != case_id:
            if group:
                yield cast(str, case_id), group
            case_id, group = row[0], []
        group.append(row)
    if group:
        yield cast(str, case_id), group


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    """The statement's rows as plain tuples, fetched in partitions through a server-side cursor on
    PostgreSQL (the whole archive is never held in memory at once)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # A cursor is planned for its first rows by default (cursor_tuple_fraction 0.1: nested loops);
        # this one is read to the end, so plan it for all of them (hash joins, one sort).
        conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
    result = conn.execute(stmt, execution_options={"stream_results": True})
    for part in result.partitions(STREAM_ROWS):
        yield from part


def _case_order(session: Session, column: Any) -> Any:
    """ORDER BY the case id in code-point order on every database, the order Python's ``<`` on str
    uses: the merge of the record stream with the recording stream compares ids in Python, and a
    PostgreSQL database's own collation (en_US, zh_CN) may order them differently."""
    if session.get_bind().dialect.name == "postgresql":
        return column.collate("C")
    return column


def _record_rows(session: Session) -> Any:
    """Each record's latest version with its latest activity and its case's agency, by case."""
    later_version = aliased(TextRecord)
    later_activity = aliased(RecordActivity)
    act = aliased(RecordActivity)
    return (
        select(
            col(TextRecord.case_id),
            col(Case.agency),
            col(TextRecord.record_id),
            col(TextRecord.version),
            cast_(col(TextRecord.officers), String),
            type_coerce(col(TextRecord.occurred_from), _TIME),
            type_coerce(col(TextRecord.occurred_to), _TIME),
            col(act.activity),
            col(act.no_recording_reason),
        )
        .join(Case, col(Case.id) == col(TextRecord.case_id))
        .outerjoin(
            act,
            and_(
                col(act.record_id) == col(TextRecord.record_id),
                ~exists().where(
                    col(later_activity.record_id) == col(act.record_id),
                    col(later_activity.id) > col(act.id),
                ),
            ),
        )
        .where(
            ~exists().where(
                col(later_version.record_id) == col(TextRecord.record_id),
                col(later_version.version) > col(TextRecord.version),
            )
        )
        .order_by(_case_order(session, col(TextRecord.case_id)))
    )


def _span_rows(session: Session) -> Any:
    """The recordings of each case (open links, not attachments, not quarantined or duplicates), by case,
    with the facts the one clock-correction rule reads."""
    probe = col(Media.probe)
    return (
        select(
            col(CaseMedia.case_id),
            col(Case.agency),
            col(Media.officer_badge),
            # The JSON values themselves: corrected_span reads them as they are (a number, a string).
            probe["duration_s"],
            probe["creation_time"],
            type_coerce(col(Media.recorded_at), _TIME),
            col(Media.clock_offset_s),
        )
        .join(Media, col(Media.id) == col(CaseMedia.media_id))
        .join(Case, col(Case.id) == col(CaseMedia.case_id))
        .where(
            col(CaseMedia.unlinked_at).is_(None),
            col(CaseMedia.source) != LinkSource.ATTACHMENT,
            col(CaseMedia.pending).is_(False),  # unconfirmed auto-links cover nothing (as coverage)
            col(Media.state).not_in(list(NOT_RECORDINGS)),
        )
        .order_by(_case_order(session, col(CaseMedia.case_id)))
    )


def _check_cases(
    session: Session,
    items: ItemList,
    warn: Callable[..., None],
    stats: dict[tuple[str, str], _Stat],
    officers_seen: set[str],
) -> None:
    """One pass over two streams ordered by case: the records and the recordings, merged by case id.
    Every table is read once (no per-batch lookups), so the time grows linearly with the archive."""
    recordings = _by_case(_stream(session, _span_rows(session)))
    pending_media: tuple[str, list[Any]] | None = next(recordings, None)
    modes: dict[str, tuple[Mode | None, float]] = {
        a.key: (a.mode, items.tolerance_s(a)) for a in items.activities
    }

    def media_of(case_id: str) -> list[Any]:
        """The recordings of ``case_id``; cases before it that have recordings but no records are
        counted on the way (their recordings still count in the statistics)."""
        nonlocal pending_media
        while pending_media is not None and pending_media[0] < case_id:
            _count_recordings(_case_spans(pending_media[1]), stats, officers_seen)
            pending_media = next(recordings, None)
        if pending_media is not None and pending_media[0] == case_id:
            rows = pending_media[1]
            pending_media = next(recordings, None)
            return rows
        return []

    for case_id, recs in _by_case(_stream(session, _record_rows(session))):
        media = _case_spans(media_of(case_id))
        _check_case(case_id, recs, media, modes, items.gap_tolerance_s, warn, stats, officers_seen)
        _count_recordings(media, stats, officers_seen)
    while pending_media is not None:
        _count_recordings(_case_spans(pending_media[1]), stats, officers_seen)
        pending_media = next(recordings, None)


def _case_spans(rows: list[Any]) -> list[tuple[str, str, logic.Span]]:
    """(agency, officer, corrected span) of a case's recordings, by the one clock-correction rule
    (``corrected_span`` is fed a light row: it reads only the probe's two facts, the device time and
    the offset). Recordings without a duration (photos, unprobed) cover nothing and are left out."""
    out = []
    for _case_id, agency, officer, duration, created, recorded_at, offset in rows:
        facts = {"duration_s": duration, "creation_time": created}
        span = cases.corrected_span(cast(Media, _SpanRow(facts, recorded_at, offset)))
        if span is not None and span[1] > span[0]:
            out.append((agency, officer, span))
    return out


def _count_recordings(
    media: list[tuple[str, str, logic.Span]], stats: dict[tuple[str, str], _Stat], officers_seen: set[str]
) -> None:
    for agency, officer, _span in media:
        stats[(agency, officer)].recordings += 1
        officers_seen.add(officer)


def _check_case(
    case_id: str,
    recs: list[Any],
    media: list[tuple[str, str, logic.Span]],
    modes: dict[str, tuple[Mode | None, float]],
    gap_tolerance_s: float,
    warn: Callable[..., None],
    stats: dict[tuple[str, str], _Stat],
    officers_seen: set[str],
) -> None:
    merged = logic.merge(m[2] for m in media)
    default: tuple[Mode | None, float] = (None, gap_tolerance_s)
    required_modes = (Mode.AV, Mode.WHOLE_PROCESS)
    for _cid, unit, rid, version, raw_officers, start, end, activity, reason in recs:
        if start.tzinfo is not UTC:
            start, end = as_utc(start), as_utc(end)
        mode, tol = modes.get(activity, default) if activity else default
        required = mode in required_modes
        # Records needing no recording are counted, not measured (their gaps warn nobody).
        res = (
            logic.measure((start, end), merged, mode, tolerance_s=tol, reason=reason or "")
            if required
            else None
        )
        status = res.status if res is not None else logic.Status.NOT_REQUIRED
        officers = _officers(raw_officers)
        officers_seen.update(officers)
        for officer in officers or [""]:
            st = stats[(unit, officer)]
            st.records += 1
            st.statuses[status] += 1
            if required:
                st.required += 1
        if status is logic.Status.MISSING:
            warn(
                WarningKind.MISSING,
                "record",
                rid,
                case_id=case_id,
                agency=unit,
                officer=",".join(officers)[:64],
                details={"activity": activity, "version": version},
            )
        elif status is logic.Status.GAPS and res is not None:
            gaps = [[a.isoformat(), b.isoformat()] for a, b in res.gaps[:50]]
            warn(
                WarningKind.GAPS,
                "record",
                rid,
                case_id=case_id,
                agency=unit,
                officer=",".join(officers)[:64],
                details={"activity": activity, "gaps": gaps},
            )
        elif activity is None and officers:
            warn(
                WarningKind.NO_ACTIVITY,
                "record",
                rid,
                case_id=case_id,
                agency=unit,
                officer=",".join(officers)[:64],
                details={"version": version},
            )
        if activity and media:
            # Recordings per activity: the linked recordings that overlap this record's window.
            for agency, officer, (a, b) in media:
                if a < end and b > start:
                    stats[(agency, officer)].per_activity[activity] += 1


def _check_unlinked(
    session: Session,
    before: datetime,
    warn: Callable[..., None],
    stats: dict[tuple[str, str], _Stat],
    officers_seen: set[str],
) -> None:
    open_link = exists().where(
        and_(col(CaseMedia.media_id) == col(Media.id), col(CaseMedia.unlinked_at).is_(None))
    )
    rows = session.execute(
        select(col(Media.id), col(Media.officer_badge), col(Media.received_at))
        .where(
            col(Media.received_at) < before,
            col(Media.state).not_in([*NOT_RECORDINGS, MediaState.DELETED]),
            col(Media.device_serial) != cases.ATTACHMENT_DEVICE,
            ~open_link,
        )
        .order_by(col(Media.received_at))
        .execution_options(yield_per=10_000)
    )
    for mid, officer, received in rows:
        officers_seen.add(officer)
        warn(
            WarningKind.UNLINKED,
            "media",
            mid,
            officer=officer,
            details={"received_at": as_utc(received).isoformat()},
        )
