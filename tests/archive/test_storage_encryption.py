"""Finding 8 of issue 10: originals and derivatives are encrypted at rest (SSE-C) with keys the S3
server never holds; reading an object with the S3 server's own credentials yields a refusal.

Real Ceph RGW throughout: the point is what the S3 server stores and answers.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError

import pytest
from minio import Minio
from minio.error import S3Error

from archive import storage_keys
from archive.config import Settings
from archive.errors import ObjectMissing, StorageError
from archive.media import ffmpeg as media
from archive.storage import MinioStore
from archive.storage_keys import StorageKeys

ROOT = Path(__file__).resolve().parents[2]


def raw_client(settings: Settings) -> Minio:
    """What an insider with the S3 server's credentials (or the server's operator) has."""
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=False,
        region=settings.s3_region,
    )


def assert_sealed(settings: Settings, bucket: str, key: str, plaintext: bytes) -> None:
    raw = raw_client(settings)
    with pytest.raises(S3Error) as refused:
        resp = raw.get_object(bucket, key)
        body = resp.read()
        resp.close()
        assert plaintext[:64] not in body  # (only reached if the server answered: then ciphertext)
    assert refused.value.code in {"InvalidArgument", "BadRequest", "InvalidRequest"}
    with pytest.raises(S3Error):
        raw.stat_object(bucket, key)


def test_every_write_path_is_encrypted_and_reads_back(
    store: MinioStore, settings: Settings, tmp_path: Path
) -> None:
    small = b"evidence: " + os.urandom(3000)
    store.put_bytes(store.originals, "a/bytes", small, "application/octet-stream")
    assert_sealed(settings, store.originals, "a/bytes", small)
    assert store.read_bytes(store.originals, "a/bytes") == small

    f = tmp_path / "proxy.mp4"
    f.write_bytes(os.urandom(200_000))
    store.put_file(store.derived, "proxy/x.mp4", f, "video/mp4")
    assert_sealed(settings, store.derived, "proxy/x.mp4", f.read_bytes())
    assert store.read_bytes(store.derived, "proxy/x.mp4") == f.read_bytes()

    part = 5 * 1024 * 1024
    blobs = [os.urandom(part), os.urandom(1000)]
    upload_id = store.start_multipart(store.originals, "a/multipart", "video/mp4")
    etags = [
        store.upload_part(store.originals, "a/multipart", upload_id, i + 1, b) for i, b in enumerate(blobs)
    ]
    store.complete_multipart(store.originals, "a/multipart", upload_id, [(1, etags[0]), (2, etags[1])])
    assert_sealed(settings, store.originals, "a/multipart", blobs[0])

    # a fresh process (nothing remembered) reads everything, ranges included
    fresh = MinioStore(settings)
    assert fresh.read_bytes(store.originals, "a/multipart") == b"".join(blobs)
    with fresh.open_stream(store.originals, "a/multipart", offset=part - 3, length=6) as chunks:
        assert b"".join(chunks) == b"".join(blobs)[part - 3 : part + 3]
    assert fresh.stat(store.originals, "a/multipart").size == part + 1000
    assert fresh.key_id_of(store.originals, "a/multipart") == fresh.keys.current  # type: ignore[union-attr]
    # Object Lock still works on encrypted originals
    fresh.set_legal_hold(store.originals, "a/bytes", True)
    assert fresh.lock_state(store.originals, "a/bytes").legal_hold
    fresh.set_legal_hold(store.originals, "a/bytes", False)
    with pytest.raises(ObjectMissing):
        fresh.stat(store.originals, "a/nothing-here")


def test_storage_keys_are_private_files_outside_the_s3_server(store: MinioStore, settings: Settings) -> None:
    folder = storage_keys.key_folder(settings)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_rotation_keeps_old_objects_readable(
    settings: Settings, store: MinioStore, env: dict[str, str]
) -> None:
    store.put_bytes(store.originals, "before", b"old key", "text/plain")
    assert store.keys is not None
    old_id = store.keys.current
    old_keys = StorageKeys(dict(store.keys.keys), old_id)  # a process that does not reload

    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--lang", "en", "keys", "rotate-storage"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"storage key rotated: {old_id} -> " in out.stdout
    new_id = out.stdout.split("-> ")[1].split(";")[0]
    assert new_id != old_id

    # a store made before the rotation picks it up; a fresh one starts with it
    store.put_bytes(store.originals, "after", b"new key", "text/plain")
    fresh = MinioStore(settings)
    assert fresh.keys is not None and fresh.keys.current == new_id
    assert fresh.read_bytes(fresh.originals, "before") == b"old key"
    assert fresh.read_bytes(fresh.originals, "after") == b"new key"
    assert fresh.key_id_of(fresh.originals, "before") == old_id
    assert fresh.key_id_of(fresh.originals, "after") == new_id
    # the object's metadata names its key (visible only to a holder of that key)
    ssec = fresh.keys.sse(new_id, fresh.originals, "after")
    st = fresh.client.stat_object(fresh.originals, "after", ssec=ssec)
    assert st.metadata["x-amz-meta-custody-key-id"] == new_id

    # an upload begun under the old key (before the rotation) is finished by another process
    pinned = MinioStore(settings)
    pinned.keys = old_keys
    upload_id = pinned.start_multipart(store.originals, "spanning", "video/mp4")
    e1 = MinioStore(settings).upload_part(store.originals, "spanning", upload_id, 1, b"x" * 5 * 1024 * 1024)
    fresh.complete_multipart(store.originals, "spanning", upload_id, [(1, e1)])
    assert MinioStore(settings).key_id_of(store.originals, "spanning") == old_id

    # without the old key, the old object cannot be read
    blind = MinioStore(settings)
    blind.keys = StorageKeys({new_id: fresh.keys.keys[new_id]}, new_id)
    with pytest.raises(StorageError, match="no storage key opens"):
        blind.read_bytes(blind.originals, "before")


def test_keys_from_the_environment(settings: Settings) -> None:
    import base64

    k1, k2 = os.urandom(32), os.urandom(32)
    env_keys = StorageKeys.parse(f"{base64.b64encode(k2).decode()}, {base64.b64encode(k1).decode()}")
    assert env_keys.current == storage_keys.key_id_for(k2)
    assert set(env_keys.keys) == {storage_keys.key_id_for(k1), storage_keys.key_id_for(k2)}
    with pytest.raises(storage_keys.StorageKeyError):
        StorageKeys.parse("bm90IDMyIGJ5dGVz")
    s = settings.model_copy(update={"storage_keys": settings.storage_keys.__class__("x" * 4)})
    with pytest.raises(storage_keys.StorageKeyError):
        storage_keys.rotate(
            s.model_copy(update={"storage_keys": s.storage_keys.__class__(base64.b64encode(k1).decode())})
        )


def test_objects_stored_in_clear_before_encryption_stay_readable(
    store: MinioStore, settings: Settings
) -> None:
    import io

    raw_client(settings).put_object(store.originals, "legacy", io.BytesIO(b"clear"), 5)
    assert store.read_bytes(store.originals, "legacy") == b"clear"
    assert store.key_id_of(store.originals, "legacy") is None


def _tiny_mp4(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def test_presigned_get_serves_decrypted_ranges_on_loopback_only(
    store: MinioStore, settings: Settings, tmp_path: Path
) -> None:
    clip = _tiny_mp4(tmp_path / "clip.mp4")
    data = clip.read_bytes()
    store.put_file(store.originals, "clip", clip, "video/mp4")
    url = store.presigned_get(store.originals, "clip", timedelta(minutes=5))
    assert url.startswith("http://127.0.0.1:")
    assert settings.s3_endpoint not in url  # not an S3 URL: no key and no S3 signature in it

    with urllib.request.urlopen(url) as r:  # noqa: S310 - loopback http
        assert r.read() == data
    req = urllib.request.Request(url, headers={"Range": "bytes=10-19"})  # noqa: S310
    with urllib.request.urlopen(req) as r:  # noqa: S310
        assert r.status == 206 and r.read() == data[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    req = urllib.request.Request(url, headers={"Range": "bytes=-5"})  # noqa: S310
    with urllib.request.urlopen(req) as r:  # noqa: S310
        assert r.read() == data[-5:]
    req = urllib.request.Request(url, headers={"Range": f"bytes={len(data)}-"})  # noqa: S310
    with pytest.raises(HTTPError) as e:
        urllib.request.urlopen(req)  # noqa: S310
    assert e.value.code == 416

    # ffprobe (what the pipeline runs) reads it, seeking included (moov at the end)
    facts = media.probe(url)
    assert facts.kind.value == "video"

    # a wrong or expired token reads nothing
    with pytest.raises(HTTPError) as e:
        urllib.request.urlopen(url[:-4] + "AAAA")  # noqa: S310
    assert e.value.code == 403
    expired = store.presigned_get(store.originals, "clip", timedelta(seconds=-1))
    with pytest.raises(HTTPError) as e:
        urllib.request.urlopen(expired)  # noqa: S310
    assert e.value.code == 403
