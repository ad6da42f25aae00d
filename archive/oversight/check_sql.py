"""The early-warning check's coverage part as set-based SQL, for PostgreSQL.

The same rule as ``archive.coverage.logic.measure`` over the spans of
``archive.cases.services.corrected_span``, written with PostgreSQL's ranges so that 10^6 records and
10^6 recordings never pass through Python one by one:

- a recording's span is ``tstzrange(start, start + duration)`` with ``start`` the device's start
  (the probe's ``creation_time`` when there is one, else ``recorded_at``) minus the clock offset;
  spans of zero length record nothing and are left out (``logic.merge``);
- a case's covered time is ``range_agg`` of its spans (the union; touching spans join, as in
  ``logic.merge``);
- a record's gaps are the pieces of ``window - union`` longer than the tolerance (strictly), its status
  ``missing`` when the union does not overlap the window (``missing-with-reason`` for an ``av``
  activity whose reason is stated), and a point-in-time record is covered when some span contains
  the instant, edges included.

``creation_time`` values the archive writes (``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``, and any ISO form with
an explicit offset that PostgreSQL and Python read alike) are read in SQL; any other non-empty value
(naive, odd) is read by Python's own rule, row by row, and its span added to the same table, so the
rule stays the one ``corrected_span``. ``tests/archive/oversight/test_oversight_equivalence.py``
checks this path against the Python path (the one SQLite runs) on the same data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from archive.cases import services as cases
from archive.coverage.itemlist import ItemList, Mode
from archive.coverage.services import NOT_RECORDINGS
from archive.media.models import Media
from archive.oversight.models import WarningKind

# ISO 8601 with an explicit zone, every field in the range both parsers accept: read in SQL.
# Days that exist in every year (29 February goes to Python), years 0001-9999: a value it accepts is
# one that PostgreSQL's cast reads without error, to the same instant as Python's fromisoformat.
_ISO_DATE = (
    r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-"
    r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
)
ISO_ZONED = (
    rf"^{_ISO_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,6}})?"
    r"(Z|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"
)


@dataclass
class SqlResult:
    counts: Counter[str] = field(default_factory=Counter)
    # (agency, officer) -> records, required, {status: n}
    records: dict[tuple[str, str], tuple[int, int, Counter[str]]] = field(default_factory=dict)
    recordings: dict[tuple[str, str], int] = field(default_factory=dict)
    per_activity: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    officers: set[str] = field(default_factory=set)


def _iso(column: str) -> str:
    """Python's ``datetime.isoformat()`` of a UTC instant, in SQL."""
    local = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN extract(microseconds FROM {local})::bigint % 1000000 <> 0 "
        f"THEN to_char({local}, '.US') ELSE '' END || '+00:00'"
    )


_NOT_RECORDING = ", ".join(f"'{s.value}'" for s in sorted(NOT_RECORDINGS))

# Every recording linked to a case (open links, not attachments, not quarantined or duplicates) with
# its corrected span; ``odd`` rows carry a creation_time only Python reads (their span comes later).
_SPANS = f"""
CREATE TEMP TABLE ov_span ON COMMIT DROP AS
SELECT x.case_id, x.officer, x.media_id, x.odd,
       CASE WHEN x.odd THEN NULL ELSE tstzrange(x.st, x.st + make_interval(secs => x.dur)) END AS span
FROM (
    SELECT cm.case_id, m.officer_badge AS officer, m.id AS media_id,
           COALESCE(m.probe->>'creation_time', '') <> '' AND NOT (m.probe->>'creation_time' ~ :iso) AS odd,
           CASE WHEN m.probe->>'creation_time' ~ :iso THEN (m.probe->>'creation_time')::timestamptz
                ELSE m.recorded_at END - make_interval(secs => m.clock_offset_s) AS st,
           COALESCE((m.probe->>'duration_s')::float8, 0) AS dur
    FROM case_media cm JOIN media m ON m.id = cm.media_id
    WHERE cm.unlinked_at IS NULL AND cm.source <> 'attachment' AND m.state NOT IN ({_NOT_RECORDING})
) x
WHERE x.odd OR (x.st IS NOT NULL AND x.dur > 0)
"""  # noqa: S608  # nosec B608 - constants only

_ODD_SPANS = """
SELECT sp.case_id, m.id, m.probe, m.recorded_at, m.clock_offset_s
FROM ov_span sp JOIN media m ON m.id = sp.media_id WHERE sp.odd
"""
_USABLE = "sp.span IS NOT NULL AND NOT isempty(sp.span)"

_COVER = f"""
CREATE TEMP TABLE ov_cover ON COMMIT DROP AS
SELECT sp.case_id, range_agg(sp.span) AS cover FROM ov_span sp WHERE {_USABLE} GROUP BY sp.case_id
"""  # noqa: S608  # nosec B608 - constants only

_MISSING = "CASE WHEN rec.av AND rec.reason ~ '[^[:space:]]' THEN 'missing-with-reason' ELSE 'missing' END"

# Each record's latest version, its latest activity, that activity's mode in the list in force, and
# its status.
_STATUS = f"""
CREATE TEMP TABLE ov_status ON COMMIT DROP AS
SELECT rec.*,
  CASE
    WHEN NOT rec.required THEN 'not-required'
    WHEN rec.s = rec.e THEN CASE
        WHEN EXISTS (SELECT 1 FROM unnest(cv.cover) g WHERE lower(g) <= rec.s AND upper(g) >= rec.s)
        THEN 'covered' ELSE {_MISSING} END
    WHEN cv.cover IS NULL OR NOT (cv.cover && tstzrange(rec.s, rec.e)) THEN {_MISSING}
    WHEN EXISTS (
        SELECT 1 FROM unnest(tstzmultirange(tstzrange(rec.s, rec.e)) - cv.cover) g
        WHERE upper(g) - lower(g) > rec.tol
    ) THEN 'gaps'
    ELSE 'covered'
  END AS status
FROM (
    SELECT r.case_id, c.agency, r.record_id, r.version,
           ARRAY(SELECT json_array_elements_text(r.officers)) AS officers,
           r.occurred_from AS s, r.occurred_to AS e,
           a.activity, COALESCE(a.no_recording_reason, '') AS reason,
           COALESCE(md.required, false) AS required, COALESCE(md.av, false) AS av, md.tol
    FROM case_records r
    JOIN cases c ON c.id = r.case_id
    LEFT JOIN record_activities a ON a.record_id = r.record_id
         AND NOT EXISTS (SELECT 1 FROM record_activities a2 WHERE a2.record_id = a.record_id AND a2.id > a.id)
    LEFT JOIN ov_mode md ON md.activity = a.activity
    -- Versions count up from 1 (an edit inserts version n+1): a record with no row above version 1 is
    -- current at version 1, so only the few edited records are grouped.
    LEFT JOIN (
        SELECT record_id, max(version) AS latest FROM case_records WHERE version > 1 GROUP BY record_id
    ) lv ON lv.record_id = r.record_id
    WHERE r.version = COALESCE(lv.latest, 1)
) rec LEFT JOIN ov_cover cv ON cv.case_id = rec.case_id
"""  # noqa: S608  # nosec B608 - constants only

_OFFICERS = "left(array_to_string(st.officers, ','), 64)"
_GAPS = f"""
(SELECT COALESCE(json_agg(json_build_array({_iso("lower(q.g)")}, {_iso("upper(q.g)")}) ORDER BY lower(q.g)),
                 '[]'::json)
 FROM (SELECT g FROM unnest(tstzmultirange(tstzrange(st.s, st.e)) - cv.cover) g
       WHERE upper(g) - lower(g) > st.tol ORDER BY lower(g) LIMIT 50) q)
"""  # noqa: S608  # nosec B608 - constants only
_WARNINGS = f"""
INSERT INTO oversight_warnings (run_id, kind, subject_type, subject_id, case_id, agency, officer, details)
SELECT :run, CASE st.status WHEN 'missing' THEN :missing WHEN 'gaps' THEN :gaps ELSE :no_activity END,
       'record', st.record_id, st.case_id, st.agency, {_OFFICERS},
       CASE st.status
         WHEN 'missing' THEN json_build_object('activity', st.activity, 'version', st.version)
         WHEN 'gaps' THEN json_build_object('activity', st.activity, 'gaps', {_GAPS})
         ELSE json_build_object('version', st.version) END
FROM ov_status st LEFT JOIN ov_cover cv ON cv.case_id = st.case_id
WHERE st.status IN ('missing', 'gaps') OR (st.activity IS NULL AND cardinality(st.officers) > 0)
ORDER BY st.case_id, st.s, st.record_id
"""  # noqa: S608  # nosec B608 - constants only

# Per (unit, officer named by the record, "" for none) and status: records, records requiring
# audio-video, and whether the officer was named (for the certificate check) rather than the stand-in.
_RECORD_STATS = """
SELECT st.agency, o.officer, st.status, count(*), count(*) FILTER (WHERE st.required), bool_or(o.named)
FROM ov_status st,
     LATERAL (SELECT x, true FROM unnest(st.officers) x
              UNION ALL SELECT '', false WHERE cardinality(st.officers) = 0) AS o(officer, named)
GROUP BY 1, 2, 3
"""
_RECORDING_STATS = f"""
SELECT c.agency, sp.officer, count(*) FROM ov_span sp JOIN cases c ON c.id = sp.case_id
WHERE {_USABLE} GROUP BY 1, 2
"""  # noqa: S608  # nosec B608 - constants only
# Recordings per activity: each linked recording overlapping the window of a record with an activity.
_ACTIVITY_STATS = f"""
SELECT st.agency, sp.officer, st.activity, count(*)
FROM ov_status st JOIN ov_span sp ON sp.case_id = st.case_id
WHERE st.activity IS NOT NULL AND st.activity <> '' AND {_USABLE}
  AND lower(sp.span) < st.e AND upper(sp.span) > st.s
GROUP BY 1, 2, 3
"""  # noqa: S608  # nosec B608 - constants only


def check_cases(session: Session, items: ItemList, run_id: int) -> SqlResult:
    """Coverage warnings of every record written straight into ``oversight_warnings`` under ``run_id``;
    the statistics and the officers met returned for the caller to finish the run."""
    conn = session.connection()

    def run(sql: str, **params: Any) -> Any:
        return conn.execute(text(sql), params)

    # A batch job read to the end: room to hash and sort in memory, for this transaction only.
    run("SET LOCAL work_mem = '256MB'")
    run(
        "CREATE TEMP TABLE ov_mode (activity text PRIMARY KEY, required bool, av bool, tol interval) "
        "ON COMMIT DROP"
    )
    modes = [
        {
            "a": a.key,
            "r": a.mode in (Mode.AV, Mode.WHOLE_PROCESS),
            "av": a.mode is Mode.AV,
            "t": items.tolerance_s(a),
        }
        for a in items.activities
    ]
    conn.execute(text("INSERT INTO ov_mode VALUES (:a, :r, :av, make_interval(secs => :t))"), modes)
    run(_SPANS, iso=ISO_ZONED)
    odd = []
    for case_id, media_id, probe, recorded_at, offset in run(_ODD_SPANS).all():
        row = Media.model_construct(id=media_id, probe=probe, recorded_at=recorded_at, clock_offset_s=offset)
        span = cases.corrected_span(row)
        if span is not None and span[1] > span[0]:
            odd.append({"c": case_id, "m": media_id, "a": span[0], "b": span[1]})
    if odd:
        conn.execute(
            text("UPDATE ov_span SET span = tstzrange(:a, :b) WHERE case_id = :c AND media_id = :m"), odd
        )
    run("ANALYZE ov_span")
    run(_COVER)
    run(_STATUS)
    run(
        _WARNINGS,
        run=run_id,
        missing=WarningKind.MISSING.value,
        gaps=WarningKind.GAPS.value,
        no_activity=WarningKind.NO_ACTIVITY.value,
    )
    out = SqlResult()
    for kind, n in run(
        "SELECT kind, count(*) FROM oversight_warnings WHERE run_id = :run GROUP BY kind", run=run_id
    ):
        out.counts[kind] = int(n)
    for agency, officer, status, n, required, named in run(_RECORD_STATS):
        recs, req, statuses = out.records.get((agency, officer), (0, 0, Counter()))
        statuses[status] += int(n)
        out.records[(agency, officer)] = (recs + int(n), req + int(required), statuses)
        if named:
            out.officers.add(officer)
    for agency, officer, n in run(_RECORDING_STATS):
        out.recordings[(agency, officer)] = int(n)
        out.officers.add(officer)
    for agency, officer, activity, n in run(_ACTIVITY_STATS):
        out.per_activity.setdefault((agency, officer), Counter())[activity] = int(n)
    for table in ("ov_status", "ov_cover", "ov_span", "ov_mode"):
        run(f"DROP TABLE {table}")
    return out
