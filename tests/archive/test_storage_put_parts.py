"""put_file of a large file (a proxy) goes as a multipart upload of UNSIGNED-PAYLOAD parts: the bytes
read back whole and by range, sealed with the object's SSE-C key, and nothing is left pending; a
part S3 refuses stops the upload and aborts it. Real Ceph RGW."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from archive import storage
from archive.config import Settings
from archive.errors import StorageError
from archive.storage import MinioStore
from tests.archive.test_storage_encryption import assert_sealed

PART = 5 * 1024 * 1024  # S3's smallest part (all but the last)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "PUT_PART_BYTES", PART)


def test_large_put_file_goes_in_parts_sealed_and_whole(
    small_parts: None, store: MinioStore, settings: Settings, tmp_path: Path
) -> None:
    f = tmp_path / "proxy.mp4"
    data = os.urandom(2 * PART + 12345)  # three parts, the last short
    f.write_bytes(data)
    store.put_file(store.derived, "proxy/big.mp4", f, "video/mp4")
    assert store.list_multipart_uploads(store.derived, "proxy/") == []
    info = store.stat(store.derived, "proxy/big.mp4")
    assert info.size == len(data) and info.content_type == "video/mp4"
    assert info.etag.endswith("-3")  # S3 assembled it from three parts
    got = store.read_bytes(store.derived, "proxy/big.mp4")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    with store.open_stream(store.derived, "proxy/big.mp4", PART - 10, 20) as chunks:
        assert b"".join(chunks) == data[PART - 10 : PART + 10]
    if settings.storage_encryption:
        assert_sealed(settings, store.derived, "proxy/big.mp4", data)
        assert MinioStore(settings).read_bytes(store.derived, "proxy/big.mp4") == data  # a fresh process


def test_a_refused_part_aborts_the_upload(
    small_parts: None, store: MinioStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "proxy.mp4"
    f.write_bytes(os.urandom(3 * PART))
    real = store.upload_part

    def refuse_second(bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
        if number == 2:
            raise StorageError("storage refused part 2")
        return real(bucket, key, upload_id, number, data)

    monkeypatch.setattr(store, "upload_part", refuse_second)
    with pytest.raises(StorageError, match="part 2"):
        store.put_file(store.derived, "proxy/refused.mp4", f, "video/mp4")
    assert store.list_multipart_uploads(store.derived, "proxy/") == []
    assert not store.exists(store.derived, "proxy/refused.mp4")
