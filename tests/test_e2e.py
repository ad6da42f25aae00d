"""End to end: `custody dock` a recorder folder through the real API into S3, with a real Celery
worker verifying, probing, deriving and signing; then check what an auditor would check."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from archive.storage import MinioStore
from tests.conftest import ROOT, LiveAPI, Proc
from tests.media_samples import make_samples

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=3, size="640x360")


def dock_cmd(api: LiveAPI, folder: Path, state: Path, *extra: str, before: Sequence[str] = ()) -> list[str]:
    """`custody [BEFORE] dock FOLDER` as officer 0815 with device BC-4711, against ``api`` (``before``:
    options of `custody` itself, such as ``--lang en``)."""
    return [
        sys.executable,
        "-m",
        "cli.main",
        *before,
        "dock",
        str(folder),
        "--officer",
        "0815",
        "--device",
        "BC-4711",
        "--server",
        api.url,
        "--state-file",
        str(state),
        *extra,
    ]


def dock(
    api: LiveAPI, token: str, folder: Path, state: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dock_cmd(api, folder, state, *extra),
        env={**os.environ, "CUSTODY_TOKEN": token},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def wait_terminal(api: LiveAPI, token: str, media_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        item = httpx.get(
            f"{api.url}/api/v1/media/{media_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        if item["state"] in {"ready", "unplayable", "quarantined", "duplicate"}:
            return dict(item)
        assert time.monotonic() < deadline, f"media {media_id} stuck in {item['state']}"
        time.sleep(0.5)


def verify_signature(api: LiveAPI, token: str, media_id: str) -> dict[str, Any]:
    """Check the manifest the way an outside verifier would: public key from /keys, RFC 8785 bytes."""
    keys = {k["key_id"]: k for k in httpx.get(f"{api.url}/api/v1/keys").json()["keys"]}
    signed = httpx.get(
        f"{api.url}/api/v1/media/{media_id}/manifest", headers={"Authorization": f"Bearer {token}"}
    ).json()
    pub = load_pem_public_key(keys[signed["key_id"]]["public_key_pem"].encode())
    assert isinstance(pub, Ed25519PublicKey)
    pub.verify(base64.b64decode(signed["signature"]), rfc8785.dumps(signed["manifest"]))
    return dict(signed["manifest"])


def test_dock_a_recorder_folder_end_to_end(
    live_api: LiveAPI,
    worker: Proc,
    make_user: Any,
    store: MinioStore,
    samples: dict[str, Path],
    tmp_path: Path,
) -> None:
    officer = make_user("0815", "officer")
    # An auditor reads every item; reviewers see media only through cases assigned to them (issue 3).
    reviewer = make_user("aud1", "auditor")
    rec = tmp_path / "recorder"
    (rec / "DCIM" / "100").mkdir(parents=True)
    files = {
        "DCIM/100/a_bodycam.mp4": samples["h264"],
        "DCIM/100/b_bodycam_hevc.mp4": samples["hevc"],
        "DCIM/100/photo.jpg": samples["photo"],
        "interview.wav": samples["wav"],
        "broken_mdat_hole.mp4": samples["mdat_hole"],
    }
    for rel, src in files.items():
        shutil.copy(src, rec / rel)
    state = tmp_path / "dock-state.json"

    out = dock(live_api, officer, rec, state)
    assert out.returncode == 0, out.stdout + out.stderr + worker.tail()
    lines = {ln.split()[1]: ln for ln in out.stdout.splitlines() if ln.startswith(("SAFE", "FAIL"))}
    assert set(lines) == set(files) and all(ln.startswith("SAFE") for ln in lines.values())
    assert "5 of 5 files safe" in out.stdout

    auth = {"Authorization": f"Bearer {reviewer}"}
    items = httpx.get(f"{live_api.url}/api/v1/media", headers=auth, params={"officer": "0815"}).json()[
        "items"
    ]
    assert len(items) == 5
    for item in items:
        rel = f"{item['source_path']}"
        src = files[rel]
        done = wait_terminal(live_api, reviewer, item["id"])
        assert done["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert done["size"] == src.stat().st_size
        # The stored original is the docked file, byte for byte.
        original = httpx.get(f"{live_api.url}/api/v1/media/{item['id']}/original", headers=auth)
        assert hashlib.sha256(original.content).hexdigest() == done["sha256"]
        manifest = verify_signature(live_api, reviewer, item["id"])
        assert manifest["original"]["sha256"] == done["sha256"]
        if rel == "broken_mdat_hole.mp4":
            assert done["state"] == "unplayable" and "unplayable" in done["state_reason"]
            assert manifest["playable"] is False
            continue
        assert done["state"] == "ready", done
        proxy = httpx.get(f"{live_api.url}/api/v1/media/{item['id']}/proxy", headers=auth)
        assert proxy.status_code == 200
        assert hashlib.sha256(proxy.content).hexdigest() in {d["sha256"] for d in manifest["derivatives"]}
        if src.suffix in {".mp4", ".wav"}:
            p = tmp_path / f"{item['id']}.proxy"
            p.write_bytes(proxy.content)
            probe = json.loads(
                subprocess.run(
                    ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(p)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            codecs = {s["codec_name"] for s in probe["streams"]}
            assert codecs <= {"h264", "aac"} and "aac" in codecs

    # Seeking works: the proxy honours HTTP Range.
    video = next(i for i in items if i["source_path"] == "DCIM/100/a_bodycam.mp4")
    whole = httpx.get(f"{live_api.url}/api/v1/media/{video['id']}/proxy", headers=auth).content
    part = httpx.get(
        f"{live_api.url}/api/v1/media/{video['id']}/proxy", headers={**auth, "Range": "bytes=100-199"}
    )
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"

    # Docking the same recorder again skips everything; --clear then empties it.
    again = dock(live_api, officer, rec, state, "--clear")
    assert again.returncode == 0 and again.stdout.count("already archived") == 5
    assert not any(p.is_file() for p in rec.rglob("*"))


def test_same_files_from_another_station_are_recorded_as_duplicates(
    live_api: LiveAPI, worker: Proc, make_user: Any, samples: dict[str, Path], tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copy(samples["mp3"], rec / "a.mp3")
    assert dock(live_api, officer, rec, tmp_path / "s1.json").returncode == 0
    out = dock(live_api, officer, rec, tmp_path / "s2.json")  # a second docking station, no shared state
    assert out.returncode == 0 and "duplicate of archived" in out.stdout
    items = httpx.get(f"{live_api.url}/api/v1/media", headers={"Authorization": f"Bearer {officer}"}).json()[
        "items"
    ]
    assert sorted(i["state"] for i in items) == ["duplicate", "ready"]


def test_dock_reports_bad_files_and_keeps_them(
    live_api: LiveAPI, worker: Proc, make_user: Any, samples: dict[str, Path], tmp_path: Path
) -> None:
    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "empty.mp4").write_bytes(b"")
    shutil.copy(samples["h264"], rec / "good.mp4")
    out = dock(live_api, officer, rec, tmp_path / "s.json", "--clear")
    assert out.returncode == 1
    assert ("FAIL  empty.mp4" in out.stdout and "zero" in out.stdout.lower()) or "0 bytes" in out.stdout
    assert (rec / "empty.mp4").exists() and not (rec / "good.mp4").exists()
    shutil.copy(samples["h264"], rec / "good.mp4")
    bad_token = dock(live_api, "cus_wrong", rec, tmp_path / "s2.json", "--clear")
    assert (
        bad_token.returncode == 2
        and "401" in bad_token.stderr
        and "invalid or disabled token" in bad_token.stderr
    )
    assert (rec / "good.mp4").exists()


def test_health_is_ok_with_a_worker(live_api: LiveAPI, worker: Proc) -> None:
    r = httpx.get(f"{live_api.url}/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "redis": "ok", "worker": "ok", "s3": "ok"}


def test_dock_killed_mid_file_resumes_without_resending(
    live_api: LiveAPI, worker: Proc, make_user: Any, store: MinioStore, engine: Any, tmp_path: Path
) -> None:
    from sqlmodel import Session, select

    from archive.ingest.models import Upload

    officer = make_user("0815", "officer")
    rec = tmp_path / "rec"
    rec.mkdir()
    big = rec / "long.mp4"
    with big.open("wb") as fh:  # 256 MiB of seeded noise: the kill lands well inside it
        for i in range(64):
            fh.write(hashlib.shake_256(i.to_bytes(4, "big")).digest(4 * 1024 * 1024))
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "dock",
            str(rec),
            "--officer",
            "0815",
            "--device",
            "BC-4711",
            "--server",
            live_api.url,
            "--state-file",
            str(state),
        ],
        env={**os.environ, "CUSTODY_TOKEN": officer},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    offset = 0
    while offset < 32 * 1024 * 1024:
        assert time.monotonic() < deadline and proc.poll() is None, (
            "dock finished before it could be interrupted"
        )
        with Session(engine) as s:
            up = s.exec(select(Upload)).first()
            offset = up.offset if up else 0
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    with Session(engine) as s:
        interrupted_at = s.exec(select(Upload)).one().offset
    assert 0 < interrupted_at < big.stat().st_size

    out = dock(live_api, officer, rec, state)
    assert out.returncode == 0, out.stdout + out.stderr
    with Session(engine) as s:
        uploads = s.exec(select(Upload)).all()
    assert len(uploads) == 1 and uploads[0].state == "complete"  # the same upload, resumed
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    assert sha in out.stdout
    media = httpx.get(f"{live_api.url}/api/v1/media", headers={"Authorization": f"Bearer {officer}"}).json()
    assert media["total"] == 1 and media["items"][0]["sha256"] == sha
