"""A worker killed in the middle of a transcode: after a restart the item still reaches `ready`,
once (one manifest, one proxy, one signing event)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.media.models import Derivative, Manifest, Media, MediaState
from archive.models import Event
from tests.conftest import LiveAPI, start_worker
from tests.test_e2e import dock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _ffmpeg_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "ffmpeg"]
    except psutil.NoSuchProcess:
        return []


def test_worker_killed_during_transcode_recovers_once(
    live_api: LiveAPI, make_user: Any, engine: Engine, env: dict[str, str], tmp_path: Path
) -> None:
    # An HEVC clip long enough that its transcode takes several seconds on 2 cores.
    rec = tmp_path / "rec"
    rec.mkdir()
    clip = rec / "hevc.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=48000",
            "-t",
            "20",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            str(clip),
        ],
        check=True,
    )
    token = make_user("0815", "officer")
    # A short visibility timeout so Redis hands the unacknowledged task to the restarted worker soon.
    short = ("CUSTODY_VISIBILITY_TIMEOUT_S", "8")
    w1 = start_worker(env, tmp_path / "w1.log", short)
    out = dock(live_api, token, rec, tmp_path / "state.json")
    assert out.returncode == 0, out.stdout + out.stderr

    deadline = time.monotonic() + 120
    while not _ffmpeg_children(w1.popen.pid):
        assert time.monotonic() < deadline, "transcode never started:\n" + w1.tail()
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the transcode
    w1.stop(sig_kill=True)  # the whole process group, ffmpeg included: no chance to clean up
    with Session(engine) as s:
        media = s.exec(select(Media)).one()
    assert media.state is MediaState.PROBED  # the kill really landed mid-derive

    w2 = start_worker(env, tmp_path / "w2.log", short)
    try:
        deadline = time.monotonic() + 180
        while True:
            with Session(engine) as s:
                media = s.exec(select(Media)).one()
            if media.state is MediaState.READY:
                break
            assert time.monotonic() < deadline, f"stuck in {media.state}:\n{w2.tail()}"
            time.sleep(0.5)
        time.sleep(3)  # give a duplicate delivery, if any, the chance to do harm
        with Session(engine) as s:
            assert len(s.exec(select(Manifest)).all()) == 1
            assert len(s.exec(select(Derivative).where(Derivative.kind == "proxy")).all()) == 1
            assert len(s.exec(select(Event).where(Event.action == "media.sign")).all()) == 1
            assert len(s.exec(select(Event).where(Event.action == "media.derive")).all()) == 1
        proxy = httpx.get(
            f"{live_api.url}/api/v1/media/{media.id}/proxy", headers={"Authorization": f"Bearer {token}"}
        )
        assert proxy.status_code == 200 and len(proxy.content) > 10_000
    finally:
        w2.stop()
