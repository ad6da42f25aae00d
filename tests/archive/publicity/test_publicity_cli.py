"""The publicity command line: `custody roster import`, `custody publicity due`, `custody report annual`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from archive.accounts.models import Role
from archive.config import Settings
from archive.db import session_scope
from archive.publicity import decisions
from archive.publicity.models import DecisionCategory, PartyKind, RosterEntry
from archive.signing import Keyring, Signature
from tests.archive.publicity.publicity_factories import case_with_decision, user
from tests.conftest import ROOT

CSV = (
    "officer,name,unit,post,badge_no,certificate_no,category,area,valid_from,valid_to\n"
    "0815,赵刚,交警大队,民警,J0815,C-0815,公安,某某县,2020-01-01,2030-12-31\n"
)


def custody(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_roster_import_due_and_annual_report(
    env: dict[str, str], engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with session_scope(engine) as s:
        user(s, "adm", Role.ADMIN)
        clerk, pub = user(s, "rm", Role.RECORDS_MANAGER), user(s, "pub", Role.PUBLISHER)
    good, bad = tmp_path / "roster.csv", tmp_path / "bad.csv"
    good.write_text(CSV, encoding="utf-8")
    bad.write_text(CSV.replace("C-0815,公安,某某县,2020-01-01", "C-0815,公安,,2020-01-01"), encoding="utf-8")

    r = custody(env, "roster", "import", str(bad), "--as", "adm")
    assert r.returncode == 1 and "row 2, field area: must not be empty" in r.stderr
    r = custody(env, "roster", "import", str(good), "--as", "pub")
    assert r.returncode == 1 and "may not" in r.stderr
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(RosterEntry)).one() == 0
    r = custody(env, "roster", "import", str(good))  # the operator on the server: logged as system:cli
    assert r.returncode == 0 and "1 added" in r.stdout, r.stderr
    r = custody(env, "roster", "import", str(good), "--as", "adm")
    assert r.returncode == 0 and "1 unchanged" in r.stdout, r.stderr

    with session_scope(engine) as s:
        case_id, _ = case_with_decision(s, clerk, "C-1")
        d = decisions.register(s, pub, decisions.DecisionInput(
            case_id=case_id, category=DecisionCategory.PENALTY, decided_on=date(2025, 3, 3),
            party_kind=PartyKind.ORGANISATION, party_name="某某有限公司", conclusion="警告"))  # fmt: skip
    r = custody(env, "publicity", "due")
    assert r.returncode == 1 and "OVERDUE" in r.stdout and "2025-03-12" in r.stdout and "case C-1" in r.stdout
    r = custody(env, "publicity", "due", "--json")
    assert json.loads(r.stdout)["overdue"][0]["id"] == d.id

    out = tmp_path / "report"
    r = custody(env, "report", "annual", "--year", "2025", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "1 decisions, 0 published" in r.stdout
    signed = json.loads((out / "report-2025.json").read_text(encoding="utf-8"))
    sig = signed["signature"]
    Keyring(settings.resolved_key_dir()).verify(signed["body"], Signature(sig["key_id"], sig["signature"]))
    assert signed["body"]["totals"]["timeliness"]["overdue"] == 1
    page = (out / "report-2025.html").read_text(encoding="utf-8")
    assert "Enforcement in 2025: the yearly report" in page and "<script" not in page
    assert "Noto Serif CJK SC" in page  # prints in Chinese wherever it is opened (fonts declared)
    r = custody(env, "--lang", "zh-CN", "report", "annual", "--year", "2025", "--out", str(out))
    assert r.returncode == 0 and "年度报告第 2 版已起草并签名" in r.stdout, r.stdout + r.stderr
    page = (out / "report-2025.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in page and "2025年度行政执法总体情况" in page and "北京时间" in page
    r = custody(env, "report", "annual", "--year", "2099")
    assert r.returncode == 1 and "is not over" in r.stderr
