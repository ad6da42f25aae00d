"""`custody legal-review ...` and `custody calendar ...` in their own processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.archive.legal.legal_factories import submit, world
from tests.conftest import ROOT


def custody(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_overdue_status_catalogue_and_calendar(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    w = world(engine)
    # Submitted on Monday 2 November 2026: due Monday 9 November, overdue on any later day.
    sub = submit(w, at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    r = custody(env, "legal-review", "overdue")
    assert r.returncode == 0, r.stderr
    assert "2026-11-09  L-1  v1  fine  rule administrative-penalty  submitted by rev1" in r.stdout
    assert "1 overdue review(s)" in r.stdout
    listed = json.loads(custody(env, "legal-review", "overdue", "--json").stdout)
    assert listed["items"][0]["submission_id"] == sub.id

    st = json.loads(custody(env, "legal-review", "status", w.case_id).stdout)
    assert (st["status"], st["required"], st["rule"], st["due"]) == (
        "pending",
        True,
        "administrative-penalty",
        "2026-11-09",
    )
    assert custody(env, "legal-review", "status", "no-such-case").returncode != 0

    shown = json.loads(custody(env, "legal-review", "catalogue").stdout)
    shown["review_working_days"] = 3
    new = tmp_path / "catalogue.json"
    new.write_text(json.dumps(shown, ensure_ascii=False), encoding="utf-8")
    refused = custody(env, "legal-review", "catalogue", "--set", str(new), "--reason", "r", "--as", "clerk")
    assert refused.returncode != 0 and "may not" in refused.stderr
    done = custody(
        env, "legal-review", "catalogue", "--set", str(new), "--reason", "provincial rule", "--as", "root"
    )
    assert done.returncode == 0 and "version 2 in force" in done.stdout, done.stderr

    gap = custody(env, "calendar", "show", "2027")
    assert gap.returncode != 0 and "2027" in gap.stderr
    holidays = custody(env, "calendar", "show", "2026")
    assert "2026-02-14  working day" in holidays.stdout and "2026-10-01  rest day" in holidays.stdout
    overrides = tmp_path / "2027.json"
    overrides.write_text(
        json.dumps({"years": {"2027": {"holidays": ["2027-01-01"], "source": "国务院办公厅通知 (test)"}}}),
        encoding="utf-8",
    )
    assert custody(env, "calendar", "set", str(overrides), "--reason", "r", "--as", "off1").returncode != 0
    installed = custody(env, "calendar", "set", str(overrides), "--reason", "2027 notice", "--as", "clerk")
    assert installed.returncode == 0 and "version 1 in force" in installed.stdout, installed.stderr
    assert "2027-01-01  rest day" in custody(env, "calendar", "show", "2027").stdout
