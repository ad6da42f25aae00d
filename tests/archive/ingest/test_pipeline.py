"""The ingest pipeline as plain functions (no Celery) against PostgreSQL, S3 and ffmpeg."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.accounts.models import Device, DevicePoolMember, DeviceStatus, Officer, Role, User
from archive.config import Settings
from archive.db import session_scope
from archive.errors import SignatureInvalid
from archive.ingest import pipeline, uploads
from archive.media.models import Derivative, DerivativeKind, Manifest, Media, MediaState
from archive.models import Event
from archive.signing import Keyring, Signature
from archive.storage import MinioStore
from tests.media_samples import make_samples


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=3, size="640x360")


class Recorder:
    """Collects the steps the pipeline hands on, so a test can drive them one by one."""

    def __init__(self) -> None:
        self.sent: list[tuple[pipeline.Step, str, str]] = []

    def send(self, step: pipeline.Step, media_id: str, sha256: str) -> None:
        self.sent.append((step, media_id, sha256))


@pytest.fixture
def ctx(engine: Engine, store: MinioStore, settings: Settings) -> pipeline.Context:
    return pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )


def _registered_pool_device(s: Session, serial: str, officer: str) -> None:
    """The recorder as an administrator registered it (issue 10, finding 3): a pool the officer is in."""
    if s.get(Officer, officer) is None:
        s.add(Officer(badge=officer, name=officer))
    if s.get(Device, serial) is None:
        s.add(Device(serial=serial, status=DeviceStatus.REGISTERED, pool=True))
    s.flush()
    if s.get(DevicePoolMember, (serial, officer)) is None:
        s.add(DevicePoolMember(serial=serial, badge=officer))
        s.flush()


def receive(ctx: pipeline.Context, path: Path, declared: str | None = None, officer: str = "0815") -> Media:
    """Put a file in S3 and record it as a finished upload, as the tus endpoint does."""
    data_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with session_scope(ctx.engine) as s:
        user = s.exec(select(User).where(User.name == officer)).first()
        if user is None:
            user = User(
                name=officer, role=Role.OFFICER, token_hash=hashlib.sha256(officer.encode()).hexdigest()
            )
            s.add(user)
            s.flush()
        _registered_pool_device(s, "BC-4711", officer)
        meta = {
            "filename": path.name,
            "officer": officer,
            "device": "BC-4711",
            "sha256": declared or data_sha,
        }
        up = uploads.Upload(
            length=path.stat().st_size,
            part_size=5 * 1024 * 1024,
            metadata_=meta,
            created_by=user.id or 0,
            object_key="",
        )
        up.object_key = f"originals/{up.id}"
        ctx.store.put_file(ctx.store.originals, up.object_key, path, "application/octet-stream")
        s.add(up)
        s.flush()
        media = uploads.complete_upload(s, up, user, "127.0.0.1", None)
    return media


def drive(ctx: pipeline.Context, media: Media) -> Recorder:
    rec = Recorder()
    rec.sent.append((pipeline.Step.VERIFY, media.id, media.sha256))
    i = 0
    while i < len(rec.sent):
        step, mid, sha = rec.sent[i]
        pipeline.run(ctx, step, mid, sha, rec)
        i += 1
    return rec


def reload(engine: Engine, media_id: str) -> Media:
    with Session(engine) as s:
        m = s.get(Media, media_id)
        assert m is not None
        return m


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def test_browser_ready_original_is_its_own_proxy_stated_in_the_manifest(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["h264"])  # H.264/AAC MP4, index at the front
    drive(ctx, media)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY
    with Session(ctx.engine) as s:
        ders = {d.kind: d for d in s.exec(select(Derivative).where(Derivative.media_id == m.id))}
        man = s.exec(select(Manifest).where(Manifest.media_id == m.id)).one()
    proxy = ders[DerivativeKind.PROXY]
    assert (proxy.method, proxy.object_key, proxy.sha256, proxy.size) == (
        "original",
        m.object_key,
        m.sha256,
        m.size,
    )
    # No second copy: the derived bucket holds the poster only.
    assert [k for k, _ in ctx.store.list_keys_modified(ctx.store.derived, "")] == [
        ders[DerivativeKind.POSTER].object_key
    ]
    signed = {d["kind"]: d for d in man.body["derivatives"]}
    assert signed["proxy"]["method"] == "original" and signed["proxy"]["sha256"] == m.sha256


def test_h264_clip_becomes_ready_with_playable_proxy_poster_and_valid_signature(
    ctx: pipeline.Context, samples: dict[str, Path], tmp_path: Path
) -> None:
    media = receive(ctx, samples["moov_at_end"])
    rec = drive(ctx, media)
    # Derive beside verify: the derive step is sent while verify reads; verify records the probe.
    assert [s for s, _, _ in rec.sent] == ["verify", "derive", "sign"]
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY and m.archived_sha256 == m.sha256
    assert m.probe is not None and m.probe["video_codec"] == "h264"
    with Session(ctx.engine) as s:
        ders = {d.kind: d for d in s.exec(select(Derivative).where(Derivative.media_id == m.id))}
        man = s.exec(select(Manifest).where(Manifest.media_id == m.id)).one()
    proxy = tmp_path / "proxy.mp4"
    proxy.write_bytes(ctx.store.read_bytes(ctx.store.derived, ders[DerivativeKind.PROXY].object_key))
    assert hashlib.sha256(proxy.read_bytes()).hexdigest() == ders[DerivativeKind.PROXY].sha256
    info = ffprobe(proxy)
    assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}
    assert ders[DerivativeKind.PROXY].method == "remux"
    poster = ctx.store.read_bytes(ctx.store.derived, ders[DerivativeKind.POSTER].object_key)
    assert poster[:3] == b"\xff\xd8\xff"  # a JPEG
    # The original is untouched: same bytes as docked.
    original = ctx.store.read_bytes(ctx.store.originals, m.object_key)
    assert original == samples["moov_at_end"].read_bytes()
    # The manifest names the original and both derivatives by digest, and its signature verifies.
    assert man.body["original"]["sha256"] == m.sha256
    assert {d["sha256"] for d in man.body["derivatives"]} == {d.sha256 for d in ders.values()}
    ctx.keyring.verify(man.body, Signature(man.key_id, man.signature))
    tampered = {**man.body, "officer": "9999"}
    with pytest.raises(SignatureInvalid):
        ctx.keyring.verify(tampered, Signature(man.key_id, man.signature))


def test_hevc_is_transcoded_to_h264(ctx: pipeline.Context, samples: dict[str, Path], tmp_path: Path) -> None:
    media = receive(ctx, samples["hevc"])
    drive(ctx, media)
    assert reload(ctx.engine, media.id).state is MediaState.READY
    with Session(ctx.engine) as s:
        proxy = s.exec(
            select(Derivative).where(Derivative.media_id == media.id, Derivative.kind == DerivativeKind.PROXY)
        ).one()
    out = tmp_path / "p.mp4"
    out.write_bytes(ctx.store.read_bytes(ctx.store.derived, proxy.object_key))
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert proxy.method == "transcode" and video["codec_name"] == "h264" and int(video["height"]) <= 720


def test_wrong_declared_hash_is_quarantined_and_never_archived(
    ctx: pipeline.Context, samples: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    media = receive(ctx, samples["h264"], declared="0" * 64)
    rec = drive(ctx, media)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.QUARANTINED and m.archived_sha256 is None
    assert (
        "0" * 64 in m.state_reason
        and hashlib.sha256(samples["h264"].read_bytes()).hexdigest() in m.state_reason
    )
    assert [s for s, _, _ in rec.sent] == ["verify"]  # nothing further happens to it
    assert any(r.levelname == "ERROR" and "QUARANTINED" in r.getMessage() for r in caplog.records)
    with Session(ctx.engine) as s:
        ev = s.exec(select(Event).where(Event.action == "media.verify")).one()
    assert ev.outcome == "failed" and ev.details["declared_sha256"] == "0" * 64


@pytest.mark.parametrize("name", ["mdat_hole", "missing_moov"])
def test_undecodable_file_is_still_archived_hashed_and_signed(
    ctx: pipeline.Context, samples: dict[str, Path], name: str
) -> None:
    media = receive(ctx, samples[name])
    drive(ctx, media)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.UNPLAYABLE and m.archived_sha256 == m.sha256
    assert m.state_reason.startswith("unplayable: ")
    with Session(ctx.engine) as s:
        man = s.exec(select(Manifest).where(Manifest.media_id == m.id)).one()
    assert man.body["playable"] is False and man.body["unplayable_reason"]
    ctx.keyring.verify(man.body, Signature(man.key_id, man.signature))
    assert ctx.store.read_bytes(ctx.store.originals, m.object_key) == samples[name].read_bytes()


def test_second_docking_of_same_bytes_is_recorded_not_stored(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    first = receive(ctx, samples["wav"])
    drive(ctx, first)
    second = receive(ctx, samples["wav"], officer="0816")
    drive(ctx, second)
    m2 = reload(ctx.engine, second.id)
    assert m2.state is MediaState.DUPLICATE and m2.duplicate_of == first.id
    assert ctx.store.versions(ctx.store.originals, m2.object_key) == []  # gone, not just hidden
    assert ctx.store.exists(ctx.store.originals, reload(ctx.engine, first.id).object_key)
    with Session(ctx.engine) as s:
        again = s.exec(select(Event).where(Event.action == "media.docked_again")).one()
    assert again.subject_id == first.id and again.details["officer"] == "0816"


def test_every_step_run_twice_writes_once(ctx: pipeline.Context, samples: dict[str, Path]) -> None:
    media = receive(ctx, samples["mjpeg_avi"])
    rec = Recorder()
    for step in pipeline.Step:
        pipeline.run(ctx, step, media.id, media.sha256, rec)
        pipeline.run(ctx, step, media.id, media.sha256, rec)  # a redelivery
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY
    with Session(ctx.engine) as s:
        assert len(s.exec(select(Manifest).where(Manifest.media_id == m.id)).all()) == 1
        assert len(s.exec(select(Derivative).where(Derivative.media_id == m.id)).all()) == 2
        signs = s.exec(select(Event).where(Event.action == "media.sign", Event.subject_id == m.id)).all()
    assert len(signs) == 1
    assert [s for s, _, _ in rec.sent] == ["derive", "sign"]


def test_step_with_stale_digest_does_nothing(ctx: pipeline.Context, samples: dict[str, Path]) -> None:
    media = receive(ctx, samples["mp3"])
    rec = Recorder()
    pipeline.run(ctx, pipeline.Step.VERIFY, media.id, "f" * 64, rec)
    assert rec.sent == [] and reload(ctx.engine, media.id).state is MediaState.RECEIVED


def test_photo_gets_jpeg_preview_and_exif_facts(ctx: pipeline.Context, samples: dict[str, Path]) -> None:
    media = receive(ctx, samples["photo"])
    drive(ctx, media)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY and m.probe is not None and m.probe["kind"] == "image"
    with Session(ctx.engine) as s:
        kinds = {
            d.kind: d.content_type for d in s.exec(select(Derivative).where(Derivative.media_id == m.id))
        }
    assert kinds[DerivativeKind.PROXY] == "image/jpeg"
