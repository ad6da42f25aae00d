"""The custody log records the less obvious events too, each with who, what, from where and the
outcome: refused logins (missing or wrong token), refused requests (403, and the 404 that hides
another officer's recording), downloads of originals and streams of proxies."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import Session, col, select

from archive.db import session_scope
from archive.ingest import pipeline
from archive.ledger import services as ledger
from archive.media.models import Media
from archive.models import Event
from tests.archive.audit.test_audit import archived, ctx, samples  # noqa: F401  (fixtures)
from tests.conftest import LiveAPI


def _events(c: pipeline.Context, action: str) -> list[Event]:
    with Session(c.engine) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(col(Event.id))))


def test_refusals_downloads_and_streams_are_logged_with_who_where_and_outcome(
    archived: list[Media],  # noqa: F811
    ctx: pipeline.Context,  # noqa: F811
    live_api: LiveAPI,
    make_user: Any,
) -> None:
    url = live_api.url
    video = archived[0]  # docked by officer 0815 (tests.test_pipeline.receive: token "0815")
    owner = {"Authorization": "Bearer 0815"}
    other = make_user("0816", "officer")

    # Failed logins: no token, then a wrong one. The token itself never reaches the log.
    assert httpx.get(f"{url}/api/v1/me").status_code == 401
    wrong = "cus_not-a-real-token-at-all"
    assert httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    failed = _events(ctx, "auth.denied")
    assert len(failed) == 2
    for ev in failed:
        assert (ev.actor, ev.outcome, ev.client_addr) == ("anonymous", "denied", "127.0.0.1")
        assert ev.details["request"] == "GET /api/v1/me"
        assert wrong not in str(ev.details)
    assert "missing bearer token" in failed[0].details["reason"]
    assert "invalid" in failed[1].details["reason"]

    # Permission denied: an officer on the auditors' endpoints (403) names the officer.
    r = httpx.get(f"{url}/api/v1/audit/checkpoints", headers=owner)
    assert r.status_code == 403
    # Another officer's recording answers 404 (existence is not disclosed) but is still a refusal.
    r = httpx.get(f"{url}/api/v1/media/{video.id}/original", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404
    denied = _events(ctx, "access.denied")
    assert [(e.actor, e.outcome, e.client_addr) for e in denied] == [
        ("user:0815", "denied", "127.0.0.1"),
        ("user:0816", "denied", "127.0.0.1"),
    ]
    assert denied[0].details["request"] == "GET /api/v1/audit/checkpoints"
    assert denied[1].details["request"] == f"GET /api/v1/media/{video.id}/original"

    # A download of the original and a ranged stream of the proxy.
    r = httpx.get(f"{url}/api/v1/media/{video.id}/original", headers=owner)
    assert r.status_code == 200 and len(r.content) == video.size
    r = httpx.get(f"{url}/api/v1/media/{video.id}/proxy", headers={**owner, "Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    (download,) = _events(ctx, "media.download")
    assert (download.actor, download.subject_id, download.outcome, download.client_addr) == (
        "user:0815",
        video.id,
        "ok",
        "127.0.0.1",
    )
    assert download.details["what"] == "original"
    (stream,) = _events(ctx, "media.stream")
    assert (stream.actor, stream.subject_id, stream.outcome, stream.client_addr) == (
        "user:0815",
        video.id,
        "ok",
        "127.0.0.1",
    )
    assert stream.details == {"what": "proxy", "range": [0, 99]}

    # All of them are leaves of the Merkle log once sequenced.
    with session_scope(ctx.engine) as s:
        cp = ledger.sign_checkpoint(s, ctx.keyring)
        for ev in [*failed, *denied, download, stream]:
            assert ev.id is not None
            assert ledger.inclusion(s, ev.id, cp.tree_size).leaf["outcome"] == ev.outcome
