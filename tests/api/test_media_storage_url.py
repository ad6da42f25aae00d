"""Reviewers stream at storage speed: ``?via=storage`` answers a redirect to a presigned S3 URL
(real RGW) for that one object, expiring in minutes, and the access is logged like any stream.
With encryption at rest (SSE-C, the default) a browser cannot read objects on a URL: the API streams
them, and the timeline hands out API URLs."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlmodel import Session, col, select

from archive.config import get_settings
from archive.ingest import pipeline
from archive.media.models import Derivative, DerivativeKind, Media
from archive.models import Event
from tests.archive.audit.test_audit import archived, ctx, samples  # noqa: F401  (fixtures)
from tests.case_factories import auth, new_case
from tests.conftest import LiveAPI


@pytest.fixture
def clear_storage(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Encryption at rest off (allowed in the test profile on loopback), before anything is stored
    and before the live API starts."""
    env["CUSTODY_STORAGE_ENCRYPTION"] = "false"
    monkeypatch.setenv("CUSTODY_STORAGE_ENCRYPTION", "false")
    get_settings.cache_clear()


def test_proxy_via_storage_is_a_logged_presigned_url_for_one_object(
    clear_storage: None,
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    live_api: LiveAPI,
    make_user: Any,
) -> None:
    url = live_api.url
    video = archived[0]
    owner = {"Authorization": "Bearer 0815"}
    other = {"Authorization": f"Bearer {make_user('0816', 'officer')}"}
    clerk = make_user("clerk", "records-manager")
    with Session(ctx.engine) as s:
        proxy = s.exec(
            select(Derivative).where(Derivative.media_id == video.id, Derivative.kind == DerivativeKind.PROXY)
        ).one()
    # The review page names the case it plays through: one the viewer sees that links the item.
    case = new_case(url, clerk, number="VIA-1")
    r = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/media",
        json={"media_id": video.id, "reason": "seen"},
        headers=auth(clerk),
    )
    assert r.status_code == 201, r.text

    r = httpx.get(f"{url}/api/v1/media/{video.id}/proxy?via=storage&case={case['id']}", headers=auth(clerk))
    assert r.status_code == 307 and r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    u = urlparse(location)
    assert f"{u.scheme}://{u.netloc}" == get_settings().public_s3_origin()
    q = parse_qs(u.query)
    assert q["X-Amz-Expires"] == [str(get_settings().stream_url_ttl_s)]  # minutes, not days

    whole = httpx.get(location)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == proxy.sha256
    assert whole.headers["content-type"] == proxy.content_type
    part = httpx.get(location, headers={"Range": "bytes=100-199"})  # the player seeks
    assert part.status_code == 206 and part.content == whole.content[100:200]
    # One object only: the same signature for another key is refused by storage.
    forged = location.replace(u.path, u.path.rsplit("/", 1)[0] + "/other.mp4")
    assert httpx.get(forged).status_code == 403

    with Session(ctx.engine) as s:
        evs = list(s.exec(select(Event).where(Event.action == "media.stream").order_by(col(Event.id))))
    assert [(e.actor, e.subject_id, e.details["via"], e.details["case"]) for e in evs] == [
        ("user:clerk", video.id, "storage", case["id"])
    ]
    # The owner gets one too (no case named); a case that does not link the item is refused.
    assert httpx.get(f"{url}/api/v1/media/{video.id}/proxy?via=storage", headers=owner).status_code == 307
    other_case = new_case(url, clerk, number="VIA-2")
    r = httpx.get(
        f"{url}/api/v1/media/{video.id}/proxy?via=storage&case={other_case['id']}", headers=auth(clerk)
    )
    assert r.status_code == 404
    # No URL for those who may not see the item.
    assert httpx.get(f"{url}/api/v1/media/{video.id}/proxy?via=storage", headers=other).status_code == 404
    assert httpx.get(f"{url}/api/v1/media/{video.id}/proxy?via=storage").status_code == 401


def test_encrypted_objects_stream_through_the_api_even_via_storage(
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    live_api: LiveAPI,
) -> None:
    assert get_settings().storage_encryption and not get_settings().browsers_stream_from_storage()
    url = live_api.url
    video = archived[0]
    owner = {"Authorization": "Bearer 0815"}
    with Session(ctx.engine) as s:
        proxy = s.exec(
            select(Derivative).where(Derivative.media_id == video.id, Derivative.kind == DerivativeKind.PROXY)
        ).one()
    # An SSE-C object cannot be read on a presigned URL: no redirect, the API streams it (decrypted).
    whole = httpx.get(f"{url}/api/v1/media/{video.id}/proxy?via=storage", headers=owner)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == proxy.sha256
    part = httpx.get(
        f"{url}/api/v1/media/{video.id}/proxy?via=storage", headers={**owner, "Range": "bytes=100-199"}
    )
    assert part.status_code == 206 and part.content == whole.content[100:200]
    with Session(ctx.engine) as s:
        evs = list(s.exec(select(Event).where(Event.action == "media.stream").order_by(col(Event.id))))
    assert evs and all(e.details.get("via") != "storage" for e in evs)
