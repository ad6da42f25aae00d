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
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, and_, exists, insert, select, type_coerce
from sqlalchemy import cast as cast_
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
from archive.oversight.models import OversightRun, OversightWarning, WarningKind

SYSTEM_OVERSIGHT = "system:oversight"
CASE_BATCH = 2000
INSERT_BATCH = 20000
_NOT_RECORDING_VALUES = frozenset(s.value for s in NOT_RECORDINGS) | NOT_RECORDINGS
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


def _batches(session: Session) -> Iterator[list[tuple[str, str]]]:
    last = ""
    while True:
        rows = session.execute(
            select(col(Case.id), col(Case.agency))
            .where(col(Case.id) > last)
            .order_by(col(Case.id))
            .limit(CASE_BATCH)
        ).all()
        if not rows:
            return
        yield [(r[0], r[1]) for r in rows]
        last = rows[-1][0]


def run_check(
    session: Session,
    *,
    unlinked_days: int,
    timezone: str = "Asia/Shanghai",
    clock: Clock = utcnow,
    certificate_check: CertificateCheck | None = None,
    actor: str = SYSTEM_OVERSIGHT,
) -> OversightRun:
    """Compute every warning and the statistics per unit (the case's agency) and officer; store them
    as one run. Idempotent in effect: a new run supersedes the previous one, which stays on record."""
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

    for batch in _batches(session):
        _check_cases(session, items, batch, warn, stats, officers_seen)
    _check_unlinked(session, started - timedelta(days=unlinked_days), warn, stats, officers_seen)
    check = certificate_check if certificate_check is not None else publicity_certificate_check()
    if check is not None:
        today = started.astimezone(ZoneInfo(timezone)).date()
        for badge, why in sorted(check(session, officers_seen, today).items()):
            warn(WarningKind.NO_CERTIFICATE, "officer", badge, officer=badge, details={"why": why})
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


def _check_cases(
    session: Session,
    items: ItemList,
    batch: list[tuple[str, str]],
    warn: Callable[..., None],
    stats: dict[tuple[str, str], _Stat],
    officers_seen: set[str],
) -> None:
    # Core rows fetched whole per batch (fetchall): no ORM identity map, no per-row driver round trip.
    conn = session.connection()
    agency = dict(batch)
    ids = list(agency)
    latest: dict[str, tuple[Any, ...]] = {}
    for row in conn.execute(
        select(
            col(TextRecord.record_id),
            col(TextRecord.version),
            col(TextRecord.case_id),
            cast_(col(TextRecord.officers), String),
            type_coerce(col(TextRecord.occurred_from), _TIME),
            type_coerce(col(TextRecord.occurred_to), _TIME),
        ).where(col(TextRecord.case_id).in_(ids))
    ).all():
        prev = latest.get(row[0])
        if prev is None or row[1] > prev[1]:
            latest[row[0]] = tuple(row)
    acts: dict[str, tuple[str | None, str]] = {}
    for act_rid, act_key, act_reason in conn.execute(
        select(
            col(RecordActivity.record_id),
            col(RecordActivity.activity),
            col(RecordActivity.no_recording_reason),
        )
        .where(col(RecordActivity.case_id).in_(ids))
        .order_by(col(RecordActivity.id))
    ).all():
        acts[act_rid] = (act_key, act_reason)
    spans: dict[str, list[logic.Span]] = defaultdict(list)
    media_of_case: dict[str, list[tuple[str, logic.Span]]] = defaultdict(list)
    probe = col(Media.probe)
    for case_id, officer, duration, created, recorded_at, offset, state in conn.execute(
        select(
            col(CaseMedia.case_id),
            col(Media.officer_badge),
            probe["duration_s"].as_float(),
            probe["creation_time"].as_string(),
            type_coerce(col(Media.recorded_at), _TIME),
            col(Media.clock_offset_s),
            col(Media.state),
        )
        .join(Media, col(Media.id) == col(CaseMedia.media_id))
        .where(
            col(CaseMedia.case_id).in_(ids),
            col(CaseMedia.unlinked_at).is_(None),
            col(CaseMedia.source) != LinkSource.ATTACHMENT,
        )
    ).all():
        if state in _NOT_RECORDING_VALUES:
            continue
        # corrected_span reads these two probe facts; the rest of the probe is not fetched.
        facts = {"duration_s": duration, "creation_time": created}
        span = cases.corrected_span(cast(Media, _SpanRow(facts, recorded_at, offset)))
        if span is not None and span[1] > span[0]:
            spans[case_id].append(span)
            media_of_case[case_id].append((officer, span))
    merged = {cid: logic.merge(s) for cid, s in spans.items()}
    empty = logic.merge(())
    modes: dict[str, tuple[Mode | None, float]] = {
        a.key: (a.mode, items.tolerance_s(a)) for a in items.activities
    }
    default: tuple[Mode | None, float] = (None, items.gap_tolerance_s)
    required_modes = (Mode.AV, Mode.WHOLE_PROCESS)
    for rid, version, case_id, raw_officers, start, end in latest.values():
        if start.tzinfo is not UTC:
            start, end = as_utc(start), as_utc(end)
        activity, reason = acts.get(rid, (None, ""))
        mode, tol = modes.get(activity, default) if activity else default
        required = mode in required_modes
        # Records needing no recording are counted, not measured (their gaps warn nobody).
        status = (
            logic.measure(
                (start, end), merged.get(case_id, empty), mode, tolerance_s=tol, reason=reason
            ).status
            if required
            else logic.Status.NOT_REQUIRED
        )
        unit = agency[case_id]
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
        elif status is logic.Status.GAPS:
            res = logic.measure(
                (start, end), merged.get(case_id, empty), mode, tolerance_s=tol, reason=reason
            )
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
        if activity and case_id in media_of_case:
            # Recordings per activity: the linked recordings that overlap this record's window.
            for officer, (a, b) in media_of_case[case_id]:
                if a < end and b > start:
                    stats[(unit, officer)].per_activity[activity] += 1
    for case_id, recs in media_of_case.items():
        for officer, _span in recs:
            stats[(agency[case_id], officer)].recordings += 1
            officers_seen.add(officer)


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
