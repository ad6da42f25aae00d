"""Derive beside verify (real RGW, PostgreSQL, ffmpeg): probe and derive start at completion, beside the
verification read, and count only once verification has passed on the same object.

The interleavings are made real, not mocked: a dispatcher that runs the derive step the moment verify
sends it (so it finishes before the read), and a store that runs verify the moment the derive step
stores its first derived object (so verify finishes while derive is at work)."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.config import Settings
from archive.ingest import pipeline
from archive.ingest.models import IngestDraft
from archive.media.models import Derivative, DerivativeKind, Manifest, MediaState
from archive.models import Event
from archive.signing import Keyring
from archive.storage import MinioStore
from tests.archive.ingest.test_pipeline import Recorder, receive, reload
from tests.media_samples import make_samples

Step = pipeline.Step


@pytest.fixture
def ctx(engine: Engine, store: MinioStore, settings: Settings) -> pipeline.Context:
    return pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=3, size="640x360")


class Eager(Recorder):
    """Runs the derive step at once when verify sends it (before verify reads a byte), then ``then``."""

    def __init__(self, ctx: pipeline.Context, then: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.ctx, self.then = ctx, then
        self.drafts: list[IngestDraft | None] = []

    def send(self, step: pipeline.Step, media_id: str, sha256: str) -> None:
        super().send(step, media_id, sha256)
        if step is Step.DERIVE and reload(self.ctx.engine, media_id).state is MediaState.RECEIVED:
            pipeline.run(self.ctx, step, media_id, sha256, self)
            with Session(self.ctx.engine, expire_on_commit=False) as s:
                self.drafts.append(s.get(IngestDraft, media_id))
            if self.then is not None:
                self.then()


class Interleaved:
    """The real store; the first time a derived object is stored, ``hook`` runs first (once)."""

    def __init__(self, store: MinioStore, hook: Callable[[], None]) -> None:
        self.store, self.hook, self.fired = store, hook, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        if bucket == self.store.derived and not self.fired:
            self.fired = True
            self.hook()
        self.store.put_file(bucket, key, path, content_type)


class HeldBack:
    """The real store; the verification read waits to look at the original (its first ``stat``) until
    ``release`` is set, while the early work (the "early-probe" thread) goes ahead."""

    def __init__(self, store: MinioStore) -> None:
        self.store, self.release = store, threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def stat(self, bucket: str, key: str) -> Any:
        if bucket == self.store.originals and threading.current_thread().name != "early-probe":
            assert self.release.wait(120), "the early work never finished"
        return self.store.stat(bucket, key)


class Killed(Exception):
    pass


class Dying:
    """The real store, except that storing a derived object kills the worker (once)."""

    def __init__(self, store: MinioStore) -> None:
        self.store, self.armed = store, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        if bucket == self.store.derived and self.armed:
            self.armed = False
            raise Killed("worker killed while storing a proxy")
        self.store.put_file(bucket, key, path, content_type)


class ReadKilled:
    """The real store, except that the verification read dies part way (once)."""

    def __init__(self, store: MinioStore) -> None:
        self.store, self.armed = store, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextmanager
    def open_stream(self, bucket: str, key: str, offset: int = 0, length: int | None = None) -> Iterator[Any]:
        with self.store.open_stream(bucket, key, offset, length) as chunks:
            if self.armed and bucket == self.store.originals:
                self.armed = False
                raise Killed("worker killed during the verification read")
            yield chunks


def with_store(ctx: pipeline.Context, store: Any) -> pipeline.Context:
    return pipeline.Context(
        engine=ctx.engine, store=store, keyring=ctx.keyring, settings=ctx.settings, clock=ctx.clock
    )


def run_all(ctx: pipeline.Context, rec: Recorder, start: int = 0) -> None:
    """Run what was sent, in order, as the workers would (each step at most as often as it was sent)."""
    i = start
    while i < len(rec.sent):
        step, mid, sha = rec.sent[i]
        pipeline.run(ctx, step, mid, sha, rec)
        i += 1


def derived_keys(ctx: pipeline.Context) -> list[str]:
    return sorted(k for k, _ in ctx.store.list_keys_modified(ctx.store.derived, ""))


def rows(ctx: pipeline.Context, media_id: str) -> list[Derivative]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(Derivative).where(Derivative.media_id == media_id)))


def actions(ctx: pipeline.Context, media_id: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(ctx.engine) as s:
        evs = s.exec(select(Event).where(Event.subject_id == media_id).order_by(Event.id))  # type: ignore[arg-type]
        return [
            (e.action, e.details)
            for e in evs
            if e.action.startswith("media.") and e.action != "media.receive"
        ]


def draft(ctx: pipeline.Context, media_id: str) -> IngestDraft | None:
    with Session(ctx.engine) as s:
        return s.get(IngestDraft, media_id)


def test_derive_finished_before_the_read_is_recorded_by_verify_with_the_probe(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["moov_at_end"])  # a remux: made by the derive step, beside verify
    rec = Eager(ctx)
    rec.sent.append((Step.VERIFY, media.id, media.sha256))
    run_all(ctx, rec)
    first = rec.drafts[0]
    assert first is not None and first.derivatives  # made while the item was still "received"
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY
    # verify recorded probe and derive (in that order, after its own event), then handed on to sign
    seen = actions(ctx, media.id)
    assert [a for a, _ in seen] == ["media.verify", "media.probe", "media.derive", "media.sign"]
    assert seen[1][1]["early"] is True and seen[2][1]["to"] == "derived"
    assert [s for s, _, _ in rec.sent] == ["verify", "derive", "sign"]
    assert {d.object_key for d in rows(ctx, media.id)} == {d["object_key"] for d in first.derivatives}
    assert draft(ctx, media.id) is None  # consumed


def test_early_work_on_a_replaced_object_is_thrown_away_and_redone_after_verify(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    right, wrong = samples["moov_at_end"], samples["hevc"]
    media = receive(ctx, right)  # declared: the digest and size of `right`
    key = media.object_key
    ctx.store.put_file(ctx.store.originals, key, wrong, "video/mp4")  # what S3 held at completion

    held = HeldBack(ctx.store)
    verifying = with_store(ctx, held)

    def replace() -> None:  # the object is replaced after the early derive, before the read looks
        ctx.store.put_file(ctx.store.originals, key, right, "video/mp4")
        held.release.set()

    rec = Eager(verifying, then=replace)
    rec.sent.append((Step.VERIFY, media.id, media.sha256))
    run_all(verifying, rec)
    early = rec.drafts[0]
    assert early is not None and early.derivatives
    early_keys = {d["object_key"] for d in early.derivatives}
    assert {d["method"] for d in early.derivatives} == {"transcode", "image"}  # made from `wrong`
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.READY and m.probe is not None and m.probe["video_codec"] == "h264"
    recorded = rows(ctx, media.id)
    assert {d.method for d in recorded} == {"remux", "image"}  # redone from the verified object
    assert not early_keys & {d.object_key for d in recorded}
    assert not early_keys & set(derived_keys(ctx))  # the early objects are gone
    assert [s for s, _, _ in rec.sent] == ["verify", "derive", "probe", "derive", "sign"]
    seen = actions(ctx, media.id)
    assert [a for a, _ in seen] == ["media.verify", "media.probe", "media.derive", "media.sign"]
    assert "early" not in seen[1][1] and "early" not in seen[2][1]
    with Session(ctx.engine) as s:
        man = s.exec(select(Manifest).where(Manifest.media_id == media.id)).one()
    assert {d["sha256"] for d in man.body["derivatives"]} == {d.sha256 for d in recorded}


@pytest.mark.parametrize("name", ["moov_at_end", "h264"])  # derive step beside verify; one-read plan
def test_a_failed_verification_leaves_nothing_derived(
    ctx: pipeline.Context, samples: dict[str, Path], name: str
) -> None:
    media = receive(ctx, samples[name], declared="0" * 64)
    rec = Eager(ctx)
    rec.sent.append((Step.VERIFY, media.id, media.sha256))
    run_all(ctx, rec)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.QUARANTINED and m.probe is None
    if name == "moov_at_end":
        assert rec.drafts[0] is not None and rec.drafts[0].derivatives  # there was early work
    assert rows(ctx, media.id) == [] and draft(ctx, media.id) is None
    assert derived_keys(ctx) == []
    assert [a for a, _ in actions(ctx, media.id)] == ["media.verify"]


def test_derive_still_at_work_when_verify_fails_throws_its_work_away(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["moov_at_end"], declared="0" * 64)
    rec = Recorder()
    # verify runs (and fails) while the derive step stores its proxy
    slow = with_store(
        ctx, Interleaved(ctx.store, lambda: pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec))
    )
    # the draft the derive step works from: made by a verify that was killed after probing
    killed = with_store(ctx, ReadKilled(ctx.store))
    with pytest.raises(Killed):
        pipeline.run(killed, Step.VERIFY, media.id, media.sha256, rec)
    assert draft(ctx, media.id) is not None and reload(ctx.engine, media.id).state is MediaState.RECEIVED
    pipeline.run(slow, Step.DERIVE, media.id, media.sha256, rec)
    assert reload(ctx.engine, media.id).state is MediaState.QUARANTINED
    assert rows(ctx, media.id) == [] and draft(ctx, media.id) is None
    assert derived_keys(ctx) == []  # stored after verify failed, then deleted


def test_verify_passing_while_derive_is_at_work_lets_derive_record(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["moov_at_end"])
    rec = Recorder()
    killed = with_store(ctx, ReadKilled(ctx.store))
    with pytest.raises(Killed):
        pipeline.run(killed, Step.VERIFY, media.id, media.sha256, rec)
    slow = with_store(
        ctx, Interleaved(ctx.store, lambda: pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec))
    )
    pipeline.run(slow, Step.DERIVE, media.id, media.sha256, rec)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.DERIVED
    seen = actions(ctx, media.id)
    assert [a for a, _ in seen] == ["media.verify", "media.probe", "media.derive"]
    assert seen[2][1]["early"] is True
    assert [s for s, _, _ in rec.sent] == ["derive", "derive", "sign"]  # two verify runs sent derive
    run_all(ctx, rec, start=1)  # the second derive finds the work done
    assert reload(ctx.engine, media.id).state is MediaState.READY
    assert len(rows(ctx, media.id)) == 2 and draft(ctx, media.id) is None
    assert len([a for a, _ in actions(ctx, media.id) if a == "media.derive"]) == 1


def test_every_early_step_repeated_writes_once(ctx: pipeline.Context, samples: dict[str, Path]) -> None:
    media = receive(ctx, samples["moov_at_end"])
    rec = Recorder()
    killed = with_store(ctx, ReadKilled(ctx.store))
    with pytest.raises(Killed):  # a verify killed mid-read after its early work started
        pipeline.run(killed, Step.VERIFY, media.id, media.sha256, rec)
    for _ in range(2):  # the derive step delivered twice while the item is still "received"
        pipeline.run(ctx, Step.DERIVE, media.id, media.sha256, rec)
    d = draft(ctx, media.id)
    assert d is not None and d.derivatives is not None and len(d.derivatives) == 2
    keys = derived_keys(ctx)
    for _ in range(2):  # verify redelivered (and once more after it is done)
        pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec)
    assert reload(ctx.engine, media.id).state is MediaState.DERIVED
    for step in (Step.PROBE, Step.DERIVE, Step.SIGN, Step.SIGN):
        pipeline.run(ctx, step, media.id, media.sha256, rec)
    assert reload(ctx.engine, media.id).state is MediaState.READY
    assert derived_keys(ctx) == keys and {d.object_key for d in rows(ctx, media.id)} == set(keys)
    seen = [a for a, _ in actions(ctx, media.id)]
    assert seen == ["media.verify", "media.probe", "media.derive", "media.sign"]


def test_derive_killed_mid_way_is_redriven_by_the_reconcile_sweep(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["moov_at_end"])
    dying = with_store(ctx, Dying(ctx.store))
    rec = Recorder()
    pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec)  # sends derive; the read passes
    assert reload(ctx.engine, media.id).state is MediaState.PROBED  # derive not done yet: no sign
    assert [s for s, _, _ in rec.sent] == ["derive"]
    with pytest.raises(Killed):
        pipeline.run(dying, Step.DERIVE, media.id, media.sha256, rec)
    # The message is gone with the worker (say): the sweep finds the item and sends derive again.
    with Session(ctx.engine) as s:
        stuck = pipeline.stuck(s, ctx.clock() + timedelta(hours=1), timedelta(minutes=10))
    assert stuck == [(Step.DERIVE, media.id, media.sha256)]
    pipeline.run(ctx, Step.DERIVE, media.id, media.sha256, rec)
    run_all(ctx, rec, start=1)
    assert reload(ctx.engine, media.id).state is MediaState.READY
    assert len(rows(ctx, media.id)) == 2 and draft(ctx, media.id) is None


@pytest.mark.parametrize("hold", [pipeline.HOLD_BYTES, 1])  # the read held until the plan is chosen
def test_original_is_read_once_for_hash_and_damage_check(
    ctx: pipeline.Context, samples: dict[str, Path], hold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "HOLD_BYTES", hold)
    media = receive(ctx, samples["h264"])  # H.264/AAC, index first: the original is its own proxy
    rec = Recorder()
    pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec)
    assert [s for s, _, _ in rec.sent] == ["sign"]  # verified, probed and derived in one step
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.DERIVED
    derive_event = dict(actions(ctx, media.id))["media.derive"]
    assert derive_event["damage_check"] == "verification read"
    kinds = {d.kind: d for d in rows(ctx, media.id)}
    assert kinds[DerivativeKind.PROXY].method == "original"
    assert kinds[DerivativeKind.PROXY].sha256 == hashlib.sha256(samples["h264"].read_bytes()).hexdigest()


def test_damaged_original_fed_from_the_verify_pipe_is_unplayable(
    ctx: pipeline.Context, samples: dict[str, Path]
) -> None:
    media = receive(ctx, samples["mdat_hole"])  # index first, 10 % of the media data cut out
    rec = Recorder()
    pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec)
    run_all(ctx, rec)
    m = reload(ctx.engine, media.id)
    assert m.state is MediaState.UNPLAYABLE and m.state_reason.startswith("unplayable: ")
    assert [k.kind for k in rows(ctx, media.id)] == []
    derive_event = dict(actions(ctx, media.id))["media.derive"]
    assert derive_event["damage_check"] == "ranged read" and derive_event["early"] is True


class ReadDies:
    """The real store; the verification read dies once after ``after`` bytes (a worker killed mid-read)."""

    def __init__(self, store: MinioStore, after: int) -> None:
        self.store, self.after, self.armed = store, after, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextmanager
    def open_stream(self, bucket: str, key: str, offset: int = 0, length: int | None = None) -> Iterator[Any]:
        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            read = 0
            for c in chunks:
                if self.armed and read + len(c) > self.after:
                    self.armed = False
                    raise Killed("worker killed during the verification read")
                read += len(c)
                yield c

        with self.store.open_stream(bucket, key, offset, length) as chunks:
            yield counted(chunks) if bucket == self.store.originals else chunks


def test_a_resumed_read_cannot_feed_the_pipe_and_the_check_reads_its_own(
    ctx: pipeline.Context, tmp_path: Path
) -> None:
    clip = tmp_path / "front.mp4"  # H.264/AAC, index first, a few MiB: read in several chunks
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "12", "-c:v", "libx264",
         "-preset", "ultrafast", "-b:v", "3M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags",
         "+faststart",
         str(clip)],
        check=True,
    )  # fmt: skip
    assert clip.stat().st_size > 3 * 1024 * 1024
    small = ctx.settings.model_copy(update={"verify_checkpoint_bytes": 1024 * 1024})
    ctx = pipeline.Context(engine=ctx.engine, store=ctx.store, keyring=ctx.keyring, settings=small)
    media = receive(ctx, clip)
    rec = Recorder()
    dying = pipeline.Context(
        engine=ctx.engine, store=ReadDies(ctx.store, 2 * 1024 * 1024), keyring=ctx.keyring, settings=small
    )
    with pytest.raises(Killed):
        pipeline.run(dying, Step.VERIFY, media.id, media.sha256, rec)
    pipeline.run(ctx, Step.VERIFY, media.id, media.sha256, rec)  # redelivered: resumes at the checkpoint
    run_all(ctx, rec)
    assert reload(ctx.engine, media.id).state is MediaState.READY
    seen = dict(actions(ctx, media.id))
    assert seen["media.verify"]["resumed_from"] > 0
    assert seen["media.derive"]["damage_check"] == "ranged read"
    assert {d.method for d in rows(ctx, media.id)} == {"original", "image"}
