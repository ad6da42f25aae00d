"""tus uploads against the real API process, PostgreSQL and S3 (Ceph RGW)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from tusclient import client as tus_client

from archive.ingest.models import Upload, UploadState
from archive.ingest.tus import encode_metadata
from archive.media.models import Media, MediaState
from archive.models import Event, Outcome
from archive.storage import MinioStore
from tests.conftest import PART, LiveAPI

TUS = {"Tus-Resumable": "1.0.0"}


def _file(tmp_path: Path, size: int, seed: int = 1) -> tuple[Path, str]:
    data = hashlib.shake_256(str(seed).encode()).digest(size) if size else b""
    p = tmp_path / f"clip-{seed}-{size}.mp4"
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def _meta(sha: str, officer: str = "0815", name: str = "clip.mp4", **extra: str) -> dict[str, str]:
    return {
        "filename": name,
        "officer": officer,
        "device": "BC-4711",
        "sha256": sha,
        "recorded_at": "2024-06-10T14:03:00+00:00",
        **extra,
    }


def _stored(store: MinioStore, engine: Engine, upload_url: str) -> tuple[Media, bytes]:
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
    with Session(engine) as s:
        up = s.get(Upload, upload_id)
        assert up is not None and up.state is UploadState.COMPLETE
        media = s.get(Media, up.media_id)
        assert media is not None
    return media, store.read_bytes(store.originals, media.object_key)


def test_tuspy_upload_lands_in_s3_byte_for_byte(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    token = make_user("0815", "officer")
    path, sha = _file(tmp_path, 2 * PART + 12345)
    c = tus_client.TusClient(f"{live_api.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    # 3 MiB chunks do not line up with the 5 MiB parts: every PATCH leaves a tail the next one extends.
    up = c.uploader(str(path), chunk_size=3 * 1024 * 1024, metadata=_meta(sha), upload_checksum=True)
    up.upload()
    media, data = _stored(store, engine, up.url)
    assert hashlib.sha256(data).hexdigest() == sha
    assert media.state is MediaState.RECEIVED and media.sha256 == sha and media.size == path.stat().st_size
    # Tail objects were overwritten and deleted in a versioned bucket: no version of them may remain.
    assert store.versions(store.originals, f"tus-tails/{media.upload_id}") == []
    assert len(store.versions(store.originals, media.object_key)) == 1
    with Session(engine) as s:
        actions = [e.action for e in s.exec(select(Event).order_by(Event.id))]
    # Issue 10, finding 3: an unknown serial belongs to nobody; its recording is archived and flagged.
    assert actions[-4:] == ["upload.create", "device.seen", "media.receive", "media.device_flag"]


def _raw_patch_then_drop(url: str, token: str, offset: int, payload: bytes, claimed: int) -> None:
    """Send a PATCH that promises ``claimed`` bytes, deliver ``payload``, then cut the connection."""
    u = urlparse(url)
    head = (
        f"PATCH {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {claimed}\r\n\r\n"
    ).encode()
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(head + payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass


def _create(api: LiveAPI, token: str, size: int, meta: dict[str, str]) -> str:
    r = httpx.post(
        f"{api.url}/api/v1/uploads",
        headers={
            **TUS,
            "Authorization": f"Bearer {token}",
            "Upload-Length": str(size),
            "Upload-Metadata": encode_metadata(meta),
        },
    )
    assert r.status_code == 201, r.text
    return f"{api.url}{r.headers['location']}"


def _offset(url: str, token: str) -> int:
    r = httpx.head(url, headers={**TUS, "Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    return int(r.headers["upload-offset"])


def test_dropped_connection_keeps_received_bytes_and_tuspy_resumes(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    token = make_user("0815", "officer")
    path, sha = _file(tmp_path, 2 * PART + 777, seed=2)
    data = path.read_bytes()
    url = _create(live_api, token, len(data), _meta(sha))
    sent = PART + 1000  # one whole part plus a tail
    _raw_patch_then_drop(url, token, 0, data[:sent], claimed=len(data))
    assert _offset(url, token) == sent

    c = tus_client.TusClient(f"{live_api.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    up = c.uploader(str(path), url=url, chunk_size=4 * 1024 * 1024)
    assert up.offset == sent  # tuspy asked the server and will not resend what it has
    up.upload()
    _, stored = _stored(store, engine, url)
    assert stored == data


def test_upload_resumes_after_api_restart(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    token = make_user("0815", "officer")
    path, sha = _file(tmp_path, 3 * PART + 99, seed=3)
    c = tus_client.TusClient(f"{live_api.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    up = c.uploader(str(path), chunk_size=PART + 7, metadata=_meta(sha))
    up.upload(stop_at=2 * PART)
    before = _offset(up.url, token)
    assert before >= 2 * PART
    live_api.stop(sig_kill=True)  # no graceful shutdown: state must already be durable
    live_api.start()
    assert _offset(up.url, token) == before
    up2 = c.uploader(str(path), url=up.url, chunk_size=PART + 7)
    up2.upload()
    _, stored = _stored(store, engine, up.url)
    assert stored == path.read_bytes()


def test_deferred_digest_must_come_with_the_final_patch(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    token = make_user("0815", "officer")
    data = os.urandom(1000)
    url = _create(live_api, token, len(data), _meta("deferred"))
    hdr = {
        **TUS,
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": "0",
    }
    r = httpx.patch(url, content=data, headers=hdr)
    assert r.status_code == 400 and "Custody-Sha256" in r.json()["detail"]
    assert _offset(url, token) == 0
    r = httpx.patch(url, content=data, headers={**hdr, "Custody-Sha256": "not-a-digest"})
    assert r.status_code == 400 and "sha256" in r.json()["detail"]
    assert _offset(url, token) == 0
    r = httpx.patch(url, content=data, headers={**hdr, "Custody-Sha256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 204 and r.headers["upload-offset"] == "1000"
    media, stored = _stored(store, engine, url)
    assert stored == data and media.sha256 == hashlib.sha256(data).hexdigest()


def test_termination_aborts_the_upload(live_api: LiveAPI, make_user: Any, engine: Engine) -> None:
    token = make_user("0815", "officer")
    url = _create(live_api, token, 5000, _meta("a" * 64))
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    assert httpx.delete(url, headers=auth).status_code == 204
    assert httpx.head(url, headers=auth).status_code == 404
    with Session(engine) as s:
        assert s.exec(select(Upload)).one().state is UploadState.TERMINATED


def test_head_and_delete_without_the_tus_version_are_refused(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    """tus 1.0.0: every request but OPTIONS carries Tus-Resumable; a client speaking another
    version (or none) gets 412 and the upload is left exactly as it was."""
    token = make_user("0815", "officer")
    url = _create(live_api, token, 5000, _meta("a" * 64))
    bearer = {"Authorization": f"Bearer {token}"}
    for version in (None, "0.2.2"):
        headers = bearer if version is None else {**bearer, "Tus-Resumable": version}
        assert httpx.head(url, headers=headers).status_code == 412
        refused = httpx.delete(url, headers=headers)
        assert refused.status_code == 412 and "Tus-Resumable" in refused.json()["detail"]
    assert httpx.head(url, headers={**TUS, **bearer}).headers["upload-offset"] == "0"
    with Session(engine) as s:
        assert s.exec(select(Upload)).one().state is UploadState.OPEN


@pytest.fixture
def archived(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> dict[str, Any]:
    """One completed upload whose stored bytes every bad request below must leave untouched."""
    token = make_user("0815", "officer")
    path, sha = _file(tmp_path, PART + 10, seed=9)
    c = tus_client.TusClient(f"{live_api.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    up = c.uploader(str(path), metadata=_meta(sha))
    up.upload()
    return {"token": token, "url": up.url, "data": path.read_bytes()}


BAD_CREATIONS = [
    ({"Upload-Length": "0"}, _meta("a" * 64), 400, "zero-length"),
    ({"Upload-Length": "-5"}, _meta("a" * 64), 400, "Upload-Length"),
    ({"Upload-Length": "ten"}, _meta("a" * 64), 400, "Upload-Length"),
    ({}, _meta("a" * 64), 400, "Upload-Length"),
    ({"Upload-Length": "10"}, _meta("xyz"), 400, "sha256"),
    ({"Upload-Length": "10"}, {k: v for k, v in _meta("a" * 64).items() if k != "sha256"}, 400, "sha256"),
    ({"Upload-Length": "10"}, _meta("a" * 64, name="../../etc/passwd"), 400, "path separators"),
    ({"Upload-Length": "10"}, _meta("a" * 64, name=".."), 400, "'..'"),
    ({"Upload-Length": "10"}, _meta("a" * 64, name="clip\x00.mp4"), 400, "control characters"),
    ({"Upload-Length": "10"}, _meta("a" * 64, name="x" * 300 + ".mp4"), 400, "longer than"),
    ({"Upload-Length": "10"}, _meta("a" * 64, path="../outside/clip.mp4"), 400, "relative"),
    ({"Upload-Length": "10"}, _meta("a" * 64, path="/abs/clip.mp4"), 400, "relative"),
    ({"Upload-Length": "10"}, _meta("a" * 64, recorded_at="yesterday"), 400, "ISO 8601"),
    ({"Upload-Length": "10"}, _meta("a" * 64, officer="0816"), 403, "may not upload recordings of officer"),
    ({"Upload-Length": "10"}, _meta("a" * 64, note="x" * 9000), 413, "Upload-Metadata"),
]


@pytest.mark.parametrize(("headers", "meta", "status", "fragment"), BAD_CREATIONS)
def test_bad_creation_is_refused_with_a_reason(
    archived: dict[str, Any],
    live_api: LiveAPI,
    store: MinioStore,
    engine: Engine,
    headers: dict[str, str],
    meta: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    r = httpx.post(
        f"{live_api.url}/api/v1/uploads",
        headers={
            **TUS,
            "Authorization": f"Bearer {archived['token']}",
            **headers,
            "Upload-Metadata": encode_metadata(meta),
        },
    )
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    _, stored = _stored(store, engine, archived["url"])
    assert stored == archived["data"]
    with Session(engine) as s:
        assert len(s.exec(select(Upload)).all()) == 1  # nothing half-created


def test_malformed_metadata_header(archived: dict[str, Any], live_api: LiveAPI) -> None:
    for header in (
        "filename",
        "filename !!notbase64",
        "a b c",
        "filename " + base64.b64encode(b"\xff").decode(),
    ):
        r = httpx.post(
            f"{live_api.url}/api/v1/uploads",
            headers={
                **TUS,
                "Authorization": f"Bearer {archived['token']}",
                "Upload-Length": "10",
                "Upload-Metadata": header,
            },
        )
        assert r.status_code == 400, (header, r.text)


def test_tokens_and_roles_are_enforced_and_denials_logged(
    archived: dict[str, Any], live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    create = {**TUS, "Upload-Length": "10", "Upload-Metadata": encode_metadata(_meta("a" * 64))}
    assert httpx.post(f"{live_api.url}/api/v1/uploads", headers=create).status_code == 401
    bad = httpx.post(f"{live_api.url}/api/v1/uploads", headers={**create, "Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    reviewer = make_user("rev1", "reviewer")
    r = httpx.post(
        f"{live_api.url}/api/v1/uploads", headers={**create, "Authorization": f"Bearer {reviewer}"}
    )
    assert r.status_code == 403 and "may not upload" in r.json()["detail"]
    other = make_user("0816", "officer")
    # Someone else's upload does not exist as far as this officer can tell.
    assert httpx.head(archived["url"], headers={**TUS, "Authorization": f"Bearer {other}"}).status_code == 404
    with Session(engine) as s:
        denied = s.exec(select(Event).where(Event.outcome == Outcome.DENIED)).all()
    assert [e.action for e in denied] == ["auth.denied", "auth.denied", "access.denied"]
    assert all(e.client_addr == "127.0.0.1" for e in denied)


def test_bad_patches_change_nothing(live_api: LiveAPI, make_user: Any, tmp_path: Path) -> None:
    token = make_user("0815", "officer")
    data = os.urandom(3000)
    url = _create(live_api, token, len(data), _meta(hashlib.sha256(data).hexdigest()))
    ok = {**TUS, "Authorization": f"Bearer {token}", "Content-Type": "application/offset+octet-stream"}
    assert httpx.patch(url, content=data[:1000], headers={**ok, "Upload-Offset": "0"}).status_code == 204
    cases = [
        ({**ok, "Upload-Offset": "500"}, data[500:900], 409),  # wrong offset
        ({**ok, "Upload-Offset": "1000", "Content-Type": "text/plain"}, data[1000:2000], 415),
        ({**ok, "Upload-Offset": "1000", "Tus-Resumable": "0.2.2"}, data[1000:2000], 412),
        ({**ok, "Upload-Offset": "1000"}, data[1000:] + b"extra", 400),  # beyond Upload-Length
        (
            {
                **ok,
                "Upload-Offset": "1000",
                "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode(),
            },
            data[1000:2000],
            460,
        ),
        ({**ok, "Upload-Offset": "1000", "Upload-Checksum": "crc99 AAAA"}, data[1000:2000], 400),
    ]
    for headers, body, status in cases:
        r = httpx.patch(url, content=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert _offset(url, token) == 1000
    good_sum = "sha1 " + base64.b64encode(hashlib.sha1(data[1000:]).digest()).decode()
    r = httpx.patch(
        url, content=data[1000:], headers={**ok, "Upload-Offset": "1000", "Upload-Checksum": good_sum}
    )
    assert r.status_code == 204 and r.headers["upload-offset"] == "3000"


def test_options_advertises_tus(live_api: LiveAPI) -> None:
    r = httpx.options(f"{live_api.url}/api/v1/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "checksum"}


def test_api_killed_mid_patch_keeps_whole_parts_and_resumes(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    live_api.stop()
    live_api.env["CUSTODY_UPLOAD_LOCK_TTL_S"] = "3"  # so the dead request's lock expires soon
    live_api.start()
    token = make_user("0815", "officer")
    path, sha = _file(tmp_path, 3 * PART + 500, seed=11)
    data = path.read_bytes()
    url = _create(live_api, token, len(data), _meta(sha))
    u = urlparse(url)
    head = (
        f"PATCH {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(head + data[: PART + PART // 2])  # one whole part and half of the next
        upload_id = u.path.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as s:
                up = s.get(Upload, upload_id)
                if up is not None and up.offset >= PART:
                    break
            assert time.monotonic() < deadline, "the first part was never recorded"
            time.sleep(0.05)
        live_api.stop(sig_kill=True)  # mid-body: half a part is only in the dead API's memory
    live_api.start()
    assert _offset(url, token) == PART  # exactly what is durable, never bytes that were lost
    auth = {**TUS, "Authorization": f"Bearer {token}", "Content-Type": "application/offset+octet-stream"}
    busy = httpx.patch(url, content=data[PART : PART + 10], headers={**auth, "Upload-Offset": str(PART)})
    if busy.status_code == 423:  # the dead request's lock lives on until its TTL runs out
        assert busy.headers["retry-after"] and "retry" in busy.json()["detail"]
    c = tus_client.TusClient(f"{live_api.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    up2 = c.uploader(str(path), url=url, chunk_size=2 * PART, retries=10, retry_delay=1)
    up2.upload()
    _, stored = _stored(store, engine, url)
    assert stored == data


def test_back_to_back_patches_never_find_the_upload_locked(
    live_api: LiveAPI, make_user: Any, store: MinioStore, engine: Engine, tmp_path: Path
) -> None:
    """Each PATCH releases the upload's lock before it answers, whichever server threads took part
    in it (parts are written to S3 from worker threads while the next part arrives): the next
    PATCH, sent at once, is accepted rather than refused as locked."""
    token = make_user("0815", "officer")
    patches = 8
    path, sha = _file(tmp_path, patches * 2 * PART, seed=11)
    data = path.read_bytes()
    url = _create(live_api, token, len(data), _meta(sha))
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    answers = []
    with httpx.Client(timeout=60) as c:
        for i in range(patches):
            body = data[i * 2 * PART : (i + 1) * 2 * PART]
            r = c.patch(
                url,
                content=body,
                headers={
                    **auth,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(i * 2 * PART),
                },
            )
            answers.append((r.status_code, r.text[:200]))
    assert answers == [(204, "")] * patches
    _, stored = _stored(store, engine, url)
    assert stored == data
