"""Issue 10, finding 6: hostile inputs that answered 500 or showed spoofed text, originals served
inline with the uploader's type, a stream's unchecked ``case=``, /docs from a CDN, 404 bodies echoing
a 10 KB id. Against the real API, PostgreSQL, Redis and S3."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.models import Event
from archive.storage import MinioStore
from tests.case_factories import T, auth, new_case, record_body
from tests.conftest import LiveAPI

TUS = {"Tus-Resumable": "1.0.0"}
EDGES = ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")


def _tus_meta(**fields: str) -> str:
    import base64

    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def _meta(name: str = "clip.mp4", recorded_at: str = "2024-06-10T14:03:00+00:00") -> str:
    return _tus_meta(
        filename=name, officer="0815", device="BC-4711", sha256="a" * 64, recorded_at=recorded_at
    )


def test_hostile_inputs_never_answer_500(live_api: LiveAPI, make_user: Any) -> None:
    officer = make_user("0815", "officer")
    clerk = make_user("clerk", "records-manager")
    url = live_api.url
    uploads = f"{url}/api/v1/uploads"
    # A non-ASCII digit is not a length.
    r = httpx.post(
        uploads,
        headers={**TUS, **auth(officer), "Upload-Length": "²".encode("latin-1"), "Upload-Metadata": _meta()},
    )
    assert r.status_code == 400, r.text
    case = new_case(url, clerk, number="EDGE-1")
    for edge in EDGES:
        r = httpx.post(
            uploads,
            headers={
                **TUS,
                **auth(officer),
                "Upload-Length": "10",
                "Upload-Metadata": _meta(recorded_at=edge),
            },
        )
        assert r.status_code == 400, (edge, r.text)
        body = record_body(T, T + timedelta(minutes=1), [])
        for field in ("occurred_from", "occurred_to"):
            r = httpx.post(
                f"{url}/api/v1/cases/{case['id']}/records", json={**body, field: edge}, headers=auth(clerk)
            )
            assert r.status_code in (400, 422), (edge, field, r.text)
        for path in ("/api/v1/cases", "/api/v1/media"):
            for param in ("since", "until"):
                r = httpx.get(url + path, params={param: edge}, headers=auth(clerk))
                assert r.status_code in (400, 422), (path, param, edge, r.text)


@pytest.mark.parametrize(
    "name",
    [
        "clip\u202egnp.exe",  # right-to-left override: shows as "clipexe.png"
        "clip\u2066x\u2069.mp4",  # isolates
        "cl\u200bip.mp4",  # zero-width space
        "clip\ufeff.mp4",  # zero-width no-break space
        "clip\u200d.mp4",  # zero-width joiner
    ],
)
def test_file_names_with_bidi_or_zero_width_characters_are_refused(
    live_api: LiveAPI, make_user: Any, name: str
) -> None:
    officer = make_user("0815", "officer")
    clerk = make_user("clerk", "records-manager")
    r = httpx.post(
        f"{live_api.url}/api/v1/uploads",
        headers={**TUS, **auth(officer), "Upload-Length": "10", "Upload-Metadata": _meta(name=name)},
    )
    assert r.status_code == 400 and "filename" in r.json()["detail"], r.text
    case = new_case(live_api.url, clerk, number="BIDI-1")
    r = httpx.post(
        f"{live_api.url}/api/v1/cases/{case['id']}/attachments",
        params={"filename": name.replace(".mp4", ".pdf")},
        content=b"%PDF-1.4\n%%EOF\n",
        headers={**auth(clerk), "Content-Type": "application/pdf"},
    )
    assert r.status_code == 400 and "filename" in r.json()["detail"], r.text


def test_a_404_does_not_echo_a_10_kb_id(live_api: LiveAPI, make_user: Any) -> None:
    clerk = make_user("clerk", "records-manager")
    for path in ("/api/v1/cases/", "/api/v1/media/"):
        r = httpx.get(live_api.url + path + "x" * 10_000, headers=auth(clerk))
        assert r.status_code == 404 and len(r.text) < 400, (path, len(r.text))


def test_docs_load_nothing_from_another_origin(live_api: LiveAPI) -> None:
    page = httpx.get(f"{live_api.url}/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text, page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = httpx.get(f"{live_api.url}/docs-static/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000, asset


def _stored_html(engine: Engine, store: MinioStore) -> str:
    """An 'original' an uploader declared as text/html, holding a script."""
    from archive.db import session_scope
    from archive.media.models import Derivative, DerivativeKind, Media
    from tests.case_factories import media_row

    mid = media_row(engine, recorded_at=T)
    data = b"<html><script>alert(document.cookie)</script></html>"
    with session_scope(engine) as s:
        m = s.get(Media, mid)
        assert m is not None
        m.content_type, m.size, m.file_name = "text/html", len(data), 'evil".html'
        s.add(m)
        s.add(
            Derivative(
                media_id=mid,
                kind=DerivativeKind.POSTER,
                object_key=f"derived/{mid}.jpg",
                size=len(data),
                content_type="image/jpeg",
                sha256="b" * 64,
                profile="test",
                method="test",
            )
        )
    store.ensure_buckets()
    store.put_bytes(store.originals, m.object_key, data, "text/html")
    store.put_bytes(store.derived, f"derived/{mid}.jpg", data, "image/jpeg")
    return mid


def test_originals_are_attachments_and_a_streams_case_is_checked(
    live_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore
) -> None:
    clerk = make_user("clerk", "records-manager")
    mid = _stored_html(engine, store)
    url = live_api.url
    r = httpx.get(f"{url}/api/v1/media/{mid}/original", headers=auth(clerk))
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert '"evil".html' not in r.headers["content-disposition"]
    # A stream names the case it was watched through: only a case the viewer sees, linking the item.
    mine = new_case(url, clerk, number="CASE-OK")
    other = new_case(url, clerk, number="CASE-OTHER")
    r = httpx.post(
        f"{url}/api/v1/cases/{mine['id']}/media",
        json={"media_id": mid, "reason": "seen"},
        headers=auth(clerk),
    )
    assert r.status_code == 201, r.text
    poster = f"{url}/api/v1/media/{mid}/poster"
    assert httpx.get(poster, params={"case": mine["id"]}, headers=auth(clerk)).status_code == 200
    for bogus in (other["id"], "not-a-case", "x" * 36):
        r = httpx.get(poster, params={"case": bogus}, headers=auth(clerk))
        assert r.status_code == 404, (bogus, r.text)
    with Session(engine) as s:
        cases_logged = [
            (e.details or {}).get("case") for e in s.exec(select(Event).where(Event.action == "media.stream"))
        ]
    assert cases_logged == [mine["id"]]
