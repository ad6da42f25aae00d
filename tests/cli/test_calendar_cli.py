"""`custody calendar status|show|set` and the lists that show due dates, in their own processes: the
missing year is warned about with the command that fixes it, provisional deadlines are listed and
labelled, and `calendar set` recomputes them (the 2027 used is a test fixture, not real data)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from archive.workdays import WorkCalendar
from archive.workdays.provisional import FIX_COMMAND
from tests.archive.legal.legal_factories import submit, world
from tests.archive.workdays.test_provisional import FIXTURE_2027
from tests.cli.test_legal_cli import custody


def _expected_warnings(st: dict[str, object]) -> set[int]:
    """The years `status` must warn about, from what it says it knows (the CLI runs on the real clock)."""
    today = date.fromisoformat(str(st["today"]))
    warn_from = date.fromisoformat(str(st["warn_from"]))
    known = {int(y): k for y, k in st["known"].items()}  # type: ignore[attr-defined]
    out = set()
    if not known[today.year]:
        out.add(today.year)
    if today >= warn_from and not known[today.year + 1]:
        out.add(today.year + 1)
    return out


def test_status_warns_lists_provisional_and_set_recomputes(
    engine: Engine, env: dict[str, str], tmp_path: Path
) -> None:
    w = world(engine)
    # Submitted on Monday 28 December 2026, before 2027 was loaded: provisional.
    sub = submit(w, at=datetime(2026, 12, 28, 2, 0, tzinfo=UTC))
    r = custody(env, "calendar", "status", "--json")
    st = json.loads(r.stdout)
    assert {x["year"] for x in st["warnings"]} == _expected_warnings(st)
    assert r.returncode == (1 if st["warnings"] else 0), r.stderr
    assert all(x["command"] == FIX_COMMAND and FIX_COMMAND in x["message"] for x in st["warnings"])
    (item,) = st["provisional"]
    assert (item["kind"], item["subject_id"], item["due"], item["missing_years"]) == (
        "legal-review",
        sub.id,
        "2027-01-02",
        [2027],
    )
    text = custody(env, "calendar", "status")
    assert "provisional  2027-01-02  legal-review v1" in text.stdout
    assert "provisional: the 2027 holiday arrangement is not loaded" in text.stdout
    listed = custody(env, "legal-review", "overdue", "--all")
    assert "2027-01-02 (provisional: the 2027 holiday arrangement is not loaded)  L-1  v1" in listed.stdout

    # With 2027 (the test fixture) and stand-ins for the other years around today: no warning; the
    # provisional due date is recomputed and said so.
    body = json.loads(FIXTURE_2027.read_text(encoding="utf-8"))
    this = date.fromisoformat(st["today"]).year
    for y in range(this, this + 3):
        if str(y) not in body["years"] and not WorkCalendar().knows_year(y):
            body["years"][str(y)] = {"holidays": [], "source": "test stand-in (weekends only)"}
    doc = tmp_path / "calendar.json"
    doc.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    refused = custody(env, "calendar", "set", str(doc), "--reason", "r", "--as", "off1")
    assert refused.returncode != 0
    done = custody(env, "calendar", "set", str(doc), "--reason", "test fixture for 2027", "--as", "clerk")
    assert done.returncode == 0, done.stderr
    assert "provisional deadlines recomputed: 1 legal review(s), 0 publicity decision(s)" in done.stdout
    again = custody(env, "calendar", "set", str(doc), "--reason", "the same again", "--as", "clerk")
    assert "recomputed: 0 legal review(s), 0 publicity decision(s)" in again.stdout
    after = custody(env, "calendar", "status", "--json")
    assert after.returncode == 0, after.stdout
    st2 = json.loads(after.stdout)
    assert st2["warnings"] == [] and st2["provisional"] == [] and st2["label"] == "db v2"
    assert "2027-01-05  L-1  v1" in custody(env, "legal-review", "overdue", "--all").stdout
    bare = custody(env, "calendar")  # without a command: the status
    assert (
        bare.returncode == 0
        and "in force: db v2" in bare.stdout
        and "0 provisional deadline(s)" in bare.stdout
    )
    # `calendar show` keeps stdout the document (to edit and set again); warnings go to stderr.
    shown = custody(env, "calendar", "show")
    document = json.loads(shown.stdout[: shown.stdout.rindex("}") + 1])
    assert document["warn_from"] == "11-01" and "2027" in document["years"]
    assert "WARNING" not in shown.stderr
