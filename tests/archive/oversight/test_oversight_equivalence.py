"""The early-warning check's two paths give the same run: the set-based SQL that PostgreSQL runs
(``archive.oversight.check_sql``) and the streamed Python pass that SQLite runs (``method="python"``),
over the same generated archive with every corner the rule has: several versions of a record, an
activity set twice, an activity the list no longer has, text-only reasons, point-in-time records,
touching and overlapping spans, fractional clock offsets, creation_time in the archive's form, with
an offset, naive and unreadable, zero and missing durations, attachments, unlinked, quarantined and
duplicate items, recordings linked to two cases, records with no officers, and a per-activity
tolerance. Compared: counts, every warning (kind, subject, case, unit, officers, details) and every
statistics row."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts import services as accounts
from archive.accounts.models import Device, Officer, Role
from archive.cases.models import Case, CaseKind, CaseMedia, DocumentKind, LinkSource, Stage, TextRecord
from archive.coverage import services as coverage
from archive.coverage.models import RecordActivity
from archive.db import session_scope
from archive.media.models import ClockSource, Media, MediaState
from archive.models import new_id
from archive.oversight import check
from archive.oversight.models import OversightRun, OversightWarning
from tests.case_factories import T

BADGES = ["0815", "0816", "0817", "0818"]
ACTIVITIES = [
    "on-site-inspection",  # av, text exception allowed
    "hearing",  # av, its own tolerance below
    "questioning-suspect",  # whole-process
    "decision",  # text
    "retired-activity",  # not in the list in force
    None,
]
CREATION = [
    None,
    "",
    "{z}",  # the archive's own form: 2024-06-10T10:00:00Z / .123456Z
    "{plus8}",  # an explicit offset
    "{naive}",  # no zone: only Python reads it (as UTC)
    "yesterday",  # unreadable: the file time counts
    "2024-02-29T10:00:30Z",  # a leap day: only Python reads it
    "2024-02-30T10:00:00Z",  # no such day: Python cannot read it either, the file time counts
]


def _iso(at: Any, form: str) -> str | None:
    if form == "{z}":
        return str(at.isoformat().replace("+00:00", "Z"))
    if form == "{plus8}":
        return str((at + timedelta(hours=8)).replace(tzinfo=None).isoformat() + "+08:00")
    if form == "{naive}":
        return str(at.replace(tzinfo=None).isoformat())
    return form


def _generate(engine: Engine, seed: int) -> None:
    rnd = random.Random(seed)
    with session_scope(engine) as s:
        admin, _ = accounts.add_user(s, f"admin{seed}", Role.ADMIN)
        body = coverage.current_list(s).model_dump(mode="json")
        for a in body["activities"]:
            if a["key"] == "hearing":
                a["gap_tolerance_s"] = 5.0
        coverage.set_list(s, admin, body, reason="hearings: 5 s")
        for b in BADGES:
            s.add(Officer(badge=b, name=b))
        s.flush()
        for b in BADGES:
            s.add(Device(serial=f"BC-{b}", officer_badge=b))
        s.flush()
        case_ids = []
        for i in range(6):
            case = Case(
                id=new_id(),
                agency=f"unit-{i % 3}",
                number=f"EQ-{seed}-{i}",
                title="t",
                kind=CaseKind.ADMINISTRATIVE,
                created_by="t",
            )
            s.add(case)
            case_ids.append(case.id)
        s.flush()
        media_ids: list[str] = []
        for j in range(40):
            mid = new_id()
            start = T + timedelta(seconds=rnd.choice([0, 30, 60, 90, 120, 600, 601, 1200]) + j)
            form = rnd.choice(CREATION)
            created = (
                _iso(start + timedelta(seconds=rnd.choice([0, 45, -90])), form) if form is not None else None
            )
            probe: dict[str, Any] | None = {"kind": "video"}
            duration = rnd.choice([60.0, 90.5, 120.0, 0.0, None, 600.0])
            if duration is not None:
                assert probe is not None
                probe["duration_s"] = duration
            if created is not None:
                assert probe is not None
                probe["creation_time"] = created
            if rnd.random() < 0.1:
                probe = None
            badge = rnd.choice(BADGES)
            s.add(
                Media(
                    id=mid,
                    sha256=f"{seed:04d}{j:060d}",
                    size=1,
                    file_name="f.mp4",
                    officer_badge=badge,
                    device_serial=f"BC-{badge}",
                    recorded_at=None if rnd.random() < 0.05 else start,
                    received_at=T - timedelta(days=rnd.choice([1, 30])),
                    clock_offset_s=rnd.choice([0.0, 1.5, -3.25, 30.0, 0.000001]),
                    clock_source=ClockSource.MEASURED,
                    state=rnd.choice(
                        [MediaState.READY] * 6
                        + [MediaState.QUARANTINED, MediaState.DUPLICATE, MediaState.DELETED]
                    ),
                    object_key=f"originals/{mid}",
                    probe=probe,
                )
            )
            media_ids.append(mid)
        s.flush()
        for mid in media_ids:
            for case_id in rnd.sample(case_ids, rnd.choice([0, 1, 1, 1, 2])):
                unlinked = rnd.random() < 0.15
                s.add(
                    CaseMedia(
                        case_id=case_id,
                        media_id=mid,
                        source=rnd.choice(
                            [LinkSource.MANUAL, LinkSource.AUTO, LinkSource.AUTO, LinkSource.ATTACHMENT]
                        ),
                        reason="t",
                        linked_by="t",
                        unlinked_at=T if unlinked else None,
                    )
                )
        s.flush()
        for k in range(50):
            case_id = rnd.choice(case_ids)
            rid = new_id()
            versions = rnd.choice([1, 1, 2])
            for v in range(1, versions + 1):
                start = T + timedelta(seconds=rnd.choice([0, 10, 45, 100, 590, 700, 1300]))
                length = rnd.choice([0, 0, 20, 60, 200, 900])
                s.add(
                    TextRecord(
                        record_id=rid,
                        version=v,
                        case_id=case_id,
                        stage=Stage.INVESTIGATION,
                        doc_kind=DocumentKind.INQUIRY_TRANSCRIPT,
                        author="0815",
                        officers=rnd.sample(BADGES, rnd.choice([0, 1, 1, 2])),
                        occurred_from=start,
                        occurred_to=start + timedelta(seconds=length),
                        body=f"record {k} version {v}",
                        created_by="t",
                    )
                )
            for _ in range(rnd.choice([0, 1, 1, 2])):
                activity = rnd.choice(ACTIVITIES)
                if activity is None:
                    continue
                reason = rnd.choice(["", "", "written record suffices", "   "])
                s.add(
                    RecordActivity(
                        case_id=case_id,
                        record_id=rid,
                        activity=activity,
                        no_recording_reason=reason,
                        item_list_version=2,
                        set_by="t",
                    )
                )
                s.flush()
        # One sure covered record: a questioning inside a ten-minute recording two days on.
        mid, rid, at = new_id(), new_id(), T + timedelta(days=2)
        s.add(
            Media(
                id=mid,
                sha256=f"{seed:04d}{99:060d}",
                size=1,
                file_name="f.mp4",
                officer_badge="0815",
                device_serial="BC-0815",
                recorded_at=at + timedelta(minutes=10),  # the file time: when the file was closed
                clock_offset_s=2.5,
                clock_source=ClockSource.MEASURED,
                state=MediaState.READY,
                object_key=f"originals/{mid}",
                probe={"kind": "video", "duration_s": 600.0, "creation_time": _iso(at, "{naive}")},
            )
        )
        s.flush()
        s.add(
            CaseMedia(case_id=case_ids[1], media_id=mid, source=LinkSource.MANUAL, reason="t", linked_by="t")
        )
        s.add(
            TextRecord(
                record_id=rid,
                case_id=case_ids[1],
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INQUIRY_TRANSCRIPT,
                author="0815",
                officers=["0815"],
                occurred_from=at + timedelta(minutes=1),
                occurred_to=at + timedelta(minutes=9),
                body="questioning",
                created_by="t",
            )
        )
        s.add(
            RecordActivity(
                case_id=case_ids[1],
                record_id=rid,
                activity="questioning-suspect",
                item_list_version=2,
                set_by="t",
            )
        )
        # One sure missing-with-reason: an inspection a week later than any recording, reason stated.
        rid = new_id()
        s.add(
            TextRecord(
                record_id=rid,
                case_id=case_ids[0],
                stage=Stage.INVESTIGATION,
                doc_kind=DocumentKind.INSPECTION_RECORD,
                author="0815",
                officers=["0815"],
                occurred_from=T + timedelta(days=7),
                occurred_to=T + timedelta(days=7, minutes=5),
                body="inspection",
                created_by="t",
            )
        )
        s.add(
            RecordActivity(
                case_id=case_ids[0],
                record_id=rid,
                activity="on-site-inspection",
                no_recording_reason="a written record suffices",
                item_list_version=2,
                set_by="t",
            )
        )


def _snapshot(s: Session, run: OversightRun) -> dict[str, Any]:
    warnings = sorted(
        (
            w.kind,
            w.subject_type,
            w.subject_id,
            w.case_id,
            w.agency,
            w.officer,
            json.dumps(w.details, sort_keys=True),
        )
        for w in s.exec(select(OversightWarning).where(OversightWarning.run_id == run.id))
    )
    stats = sorted(json.dumps(r, sort_keys=True) for r in run.stats)
    return {"counts": dict(run.counts), "warnings": warnings, "stats": stats}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_and_python_paths_agree(engine: Engine, seed: int, caplog: pytest.LogCaptureFixture) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's")
    _generate(engine, seed)
    badges: list[list[str]] = []

    def roster(_s: object, seen: Any, _on: object) -> dict[str, str]:
        badges.append(sorted(seen))
        return {}

    with session_scope(engine) as s:
        python = _snapshot(s, check.run_check(s, unlinked_days=7, certificate_check=roster, method="python"))
        sql = _snapshot(s, check.run_check(s, unlinked_days=7, certificate_check=roster))
    assert python == sql
    assert "SQL path failed" not in caplog.text  # the SQL path ran (no fallback)
    assert badges[0] == badges[1]  # the same officers go to the certificate check
    # Not vacuous: the generated archive has every kind of coverage warning and every status.
    kinds = {w[0] for w in sql["warnings"]}
    assert {"missing-recording", "gaps", "record-without-activity"} <= kinds, kinds
    statuses = {
        k
        for row in sql["stats"]
        for k, v in json.loads(row).items()
        if v and k in {"covered", "gaps", "missing", "missing_with_reason", "not_required"}
    }
    assert statuses == {"covered", "gaps", "missing", "missing_with_reason", "not_required"}, statuses


def test_a_value_sql_cannot_read_falls_back_to_python(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe fact of an unexpected type (a duration of ``true``) makes the SQL fail: the run still
    completes, by the Python rule, with the same result as the Python path, and the log says so."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's")
    _generate(engine, 4)
    with session_scope(engine) as s:
        odd = s.exec(select(Media).where(Media.state == MediaState.READY)).first()
        assert odd is not None
        odd.probe = {"kind": "video", "duration_s": True}
        s.add(odd)
    with session_scope(engine) as s:
        python = _snapshot(
            s, check.run_check(s, unlinked_days=7, certificate_check=lambda *_: {}, method="python")
        )
        assert "SQL path failed" not in caplog.text
        fallback = _snapshot(s, check.run_check(s, unlinked_days=7, certificate_check=lambda *_: {}))
    assert "SQL path failed" in caplog.text
    assert python == fallback
