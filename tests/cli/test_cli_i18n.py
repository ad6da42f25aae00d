"""The dock talks to the officer in their language: --lang, else the locale (LANG / LC_ALL), else the
agency's default (zh-CN); the server's own messages come back in the same language."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, LiveAPI
from tests.test_e2e import dock_cmd


def dock(api: LiveAPI, token: str, folder: Path, state: Path, *lang: str, **env: str) -> Any:
    return subprocess.run(
        dock_cmd(api, folder, state, "--verify-timeout", "1", before=lang),
        env={**os.environ, "CUSTODY_TOKEN": token, "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": "", **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_the_dock_speaks_the_officers_language(live_api: LiveAPI, make_user: Any, tmp_path: Path) -> None:
    """No worker on purpose: the upload is never verified, so each run ends in the "not safe" lines."""
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "empty.mp4").write_bytes(b"")
    (rec / "note.wav").write_bytes(b"RIFF" + bytes(2000))

    zh = dock(live_api, officer, rec, tmp_path / "a.json", LANG="zh_CN.UTF-8")  # the locale decides
    assert zh.returncode == 1, zh.stdout + zh.stderr
    assert f"正在以执法人员 0815 的身份将 {rec} 上传至 {live_api.url}" in zh.stderr
    assert "失败  empty.mp4" in zh.stdout and "空文件（0 字节）：无可归档内容，保留在记录仪上" in zh.stdout
    assert "服务器在 1 秒内未完成哈希校验（状态：received）" in zh.stdout
    assert zh.stdout.rstrip().endswith("2 个文件中 0 个已安全归档；2 个未安全归档")

    en = dock(live_api, officer, rec, tmp_path / "b.json", "--lang", "en", LANG="zh_CN.UTF-8")
    assert "docking" in en.stderr and "empty file (0 bytes)" in en.stdout
    assert en.stdout.rstrip().endswith("0 of 2 files safe; 2 NOT safe")

    # A container's C locale says nothing: the agency's default applies (zh-CN unless configured).
    default = dock(live_api, officer, rec, tmp_path / "c.json", LANG="C.UTF-8", CUSTODY_LANGUAGE="zh-CN")
    assert "未安全归档" in default.stdout
    english_agency = dock(live_api, officer, rec, tmp_path / "d.json", LANG="C.UTF-8", CUSTODY_LANGUAGE="en")
    assert "NOT safe" in english_agency.stdout

    # The server answers in the dock's language too (Accept-Language): a wrong token, in Chinese.
    wrong = dock(live_api, "cus_wrong", rec, tmp_path / "e.json", "--lang", "zh-CN")
    assert wrong.returncode == 2 and wrong.stderr.startswith("无法上传：正在向 ")
    assert "HTTP 401" in wrong.stderr

    unknown = dock(live_api, officer, rec, tmp_path / "f.json", "--lang", "fr")
    assert unknown.returncode == 2 and "unsupported language 'fr'; supported: zh-CN, en" in unknown.stderr


def test_reports_show_local_times_in_the_chosen_language(
    live_api: LiveAPI, make_user: Any, engine: Any, tmp_path: Path
) -> None:
    """`custody retention report`: when each item becomes deletable, in the agency's zone, named."""
    from datetime import UTC, datetime

    from archive.db import session_scope
    from archive.localtime import format_local
    from retention.models import RetentionStatus
    from retention.policy import Keep
    from tests.case_factories import media_row

    mid = media_row(engine, recorded_at=datetime(2024, 1, 1, tzinfo=UTC))
    due = datetime.now(UTC).replace(hour=16, minute=30, second=0, microsecond=0)  # 00:30 next day, Beijing
    with session_scope(engine) as s:
        s.add(
            RetentionStatus(
                media_id=mid, policy_version=1, rule_id="default", keep=Keep.PERIOD, delete_after=due
            )
        )

    def report(*lang: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *lang, "retention", "report", "--days", "30"],
            env={**os.environ, **live_api.env, "LC_ALL": "", "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )

    zh = report("--lang", "zh-CN")
    assert zh.returncode == 0, zh.stderr
    assert f"{format_local(due, 'zh-CN')}  {mid}  规则 default" in zh.stdout
    assert "北京时间" in zh.stdout and "30 天内将有 1 项到期可删除" in zh.stdout
    en = report("--lang", "en")
    assert f"{format_local(due, 'en')}  {mid}  rule default" in en.stdout
    assert "CST (UTC+08:00)" in en.stdout and "1 item becomes deletable within 30 days" in en.stdout
