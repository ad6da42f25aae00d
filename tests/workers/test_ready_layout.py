"""Derive beside verify with the real workers as `custody serve` lays them out (ingest: threads; transcode:
one prefork child): the derive step the verify task sends at completion travels to the transcode worker,
the one-read damage check runs inside verify, and each item ends `ready` with its early work recorded
once and nothing left behind (no draft, no derived object without its row)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.ingest.models import IngestDraft
from archive.media.models import Derivative, Media, MediaState
from archive.models import Event
from archive.storage import MinioStore
from tests.conftest import LiveAPI, Proc
from tests.media_samples import make_samples
from tests.test_e2e import dock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_docked_clips_are_derived_beside_verification_and_recorded_once(
    live_api: LiveAPI,
    serve_workers: tuple[Proc, Proc],
    make_user: Any,
    engine: Engine,
    store: MinioStore,
    tmp_path: Path,
) -> None:
    samples = make_samples(tmp_path / "samples", seconds=3, size="640x360")
    folder = tmp_path / "rec"
    folder.mkdir()
    for name in ("h264", "moov_at_end"):  # the original as its own proxy; a remux on the transcode worker
        shutil.copy(samples[name], folder / samples[name].name)
    token = make_user("0815", "officer")
    out = dock(live_api, token, folder, tmp_path / "state.json")
    assert out.returncode == 0, out.stdout + out.stderr

    deadline = time.monotonic() + 180
    while True:
        with Session(engine) as s:
            media = list(s.exec(select(Media)))
        if len(media) == 2 and all(m.state.terminal for m in media):
            break
        assert time.monotonic() < deadline, [(m.file_name, m.state) for m in media]
        time.sleep(0.3)
    assert {m.state for m in media} == {MediaState.READY}

    with Session(engine) as s:
        events = list(s.exec(select(Event).where(col(Event.subject_type) == "media")))
        rows = list(s.exec(select(Derivative)))
        assert s.exec(select(IngestDraft)).all() == []
    for m in media:
        steps = {"media.verify", "media.probe", "media.derive", "media.sign"}
        mine = sorted(
            (e for e in events if e.subject_id == m.id and e.action in steps), key=lambda e: e.id or 0
        )
        assert [e.action for e in mine] == ["media.verify", "media.probe", "media.derive", "media.sign"]
        assert mine[1].details["early"] is True  # probed beside the read, recorded once verified
        derive = mine[2].details
        if m.file_name == samples["h264"].name:
            assert derive["damage_check"] == "verification read"  # one read: hash and damage check
            assert {d["method"] for d in derive["derivatives"]} == {"original", "image"}
        else:
            assert {d["method"] for d in derive["derivatives"]} == {"remux", "image"}
    # Every derived object is one a row names: nothing made early was left behind.
    stored = {k for k, _ in store.list_keys_modified(store.derived, "")}
    assert stored == {d.object_key for d in rows if d.method != "original"}
