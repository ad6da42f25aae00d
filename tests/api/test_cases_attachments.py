"""Attachments of text records (scans, PDFs): archived as originals through the same hash-and-sign
pipeline as recordings, linked to the case, named by a record; against the real API, S3 and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.config import Settings
from archive.ingest import pipeline
from archive.media.models import Manifest, Media
from archive.models import Event
from archive.signing import Keyring, Signature
from archive.storage import MinioStore
from tests.archive.ingest.test_pipeline import drive
from tests.case_factories import T, auth, new_case, record_body
from tests.conftest import LiveAPI

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _media(engine: Engine, media_id: str) -> Media:
    with Session(engine, expire_on_commit=False) as s:
        m = s.get(Media, media_id)
        assert m is not None
        return m


def test_a_scan_is_archived_signed_and_attached(
    live_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore, settings: Settings
) -> None:
    clerk = make_user("clerk", "records-manager")
    rev1 = make_user("rev1", "reviewer")
    rev2 = make_user("rev2", "reviewer")
    auditor = make_user("aud", "auditor")
    url = live_api.url
    case = new_case(url, clerk, number="AT-1", reviewers=["rev1"])
    attach = f"{url}/api/v1/cases/{case['id']}/attachments"
    sha = hashlib.sha256(PDF).hexdigest()

    # The assigned reviewer archives a scanned notice, declaring the digest its scanner computed.
    r = httpx.post(
        attach,
        params={"filename": "notice-signed.pdf", "sha256": sha},
        content=PDF,
        headers={**auth(rev1), "Content-Type": "application/pdf"},
    )
    assert r.status_code == 201, r.text
    pdf_id = r.json()["media_id"]
    assert r.json()["sha256"] == sha and r.json()["state"] == "received"
    # Declared digest not what arrived: archived for the record, then quarantined by verify.
    bad = httpx.post(
        attach,
        params={"filename": "tampered.pdf", "sha256": "0" * 64},
        content=PDF + b"%tampered\n",
        headers={**auth(clerk), "Content-Type": "application/pdf"},
    ).json()["media_id"]
    # Refused before anything is stored: a case you cannot see, a read-only role, an empty file.
    assert (
        httpx.post(attach, params={"filename": "x.pdf"}, content=PDF, headers=auth(rev2)).status_code == 404
    )
    assert (
        httpx.post(attach, params={"filename": "x.pdf"}, content=PDF, headers=auth(auditor)).status_code
        == 403
    )
    assert (
        httpx.post(attach, params={"filename": "x.pdf"}, content=b"", headers=auth(clerk)).status_code == 400
    )

    # The same pipeline as a recording (the API queued it; here it runs in this process).
    ctx = pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )
    drive(ctx, _media(engine, pdf_id))
    drive(ctx, _media(engine, bad))
    pdf, tampered = _media(engine, pdf_id), _media(engine, bad)
    assert tampered.state == "quarantined"
    assert pdf.state == "unplayable" and pdf.archived_sha256 == sha  # archived, not a video
    with Session(engine) as s:
        man = s.exec(select(Manifest).where(Manifest.media_id == pdf_id)).one()
        assert len(s.exec(select(Media)).all()) == 2  # the refused uploads stored nothing
    ctx.keyring.verify(man.body, Signature(man.key_id, man.signature))
    assert man.body["original"]["sha256"] == sha and man.body["original"]["file_name"] == "notice-signed.pdf"
    original = httpx.get(f"{url}/api/v1/media/{pdf_id}/original", headers=auth(rev1))
    assert original.status_code == 200 and original.content == PDF

    # A record names it; every version keeps naming it; the link says where it came from.
    rec = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/records",
        json=record_body(T, T, [], doc_kind="notice", attachments=[pdf_id]),
        headers=auth(rev1),
    )
    assert rec.status_code == 201, rec.text
    assert rec.json()["record"]["attachments"] == [pdf_id]
    links = httpx.get(f"{url}/api/v1/cases/{case['id']}/media", headers=auth(rev1)).json()
    assert [(x["media_id"], x["source"]) for x in links] == [(pdf_id, "attachment"), (bad, "attachment")]
    # A quarantined item is not an archived original: a record cannot name it.
    refused = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/records",
        json=record_body(T, T, [], attachments=[bad]),
        headers=auth(rev1),
    )
    assert refused.status_code == 400 and "quarantined" in refused.json()["detail"]
    with Session(engine) as s:
        actions = [
            e.action for e in s.exec(select(Event).where(Event.subject_id == pdf_id).order_by(Event.id))
        ]
    assert actions[:2] == ["media.receive", "case.link"] and "media.sign" in actions


def test_chunked_json_bodies_are_capped_but_attachments_and_uploads_keep_their_own_limits(
    live_api: LiveAPI, make_user: Any, engine: Engine
) -> None:
    """A body sent without Content-Length is not read whole into memory: past the JSON cap the
    API answers 413 and stores nothing. A large scan still goes through its own route."""
    clerk = make_user("clerk", "records-manager")
    url = live_api.url
    case = new_case(url, clerk, number="CAP-1", reviewers=[])

    def chunked_json() -> Iterator[bytes]:
        yield b'{"number": "CAP-2", "title": "'
        for _ in range(6):
            yield b"a" * (1024 * 1024)
        yield b'", "kind": "administrative"}'

    r = httpx.post(
        f"{url}/api/v1/cases",
        content=chunked_json(),
        headers={**auth(clerk), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413
    numbers = [c["number"] for c in httpx.get(f"{url}/api/v1/cases", headers=auth(clerk)).json()["items"]]
    assert numbers == ["CAP-1"]

    big = os.urandom(6 * 1024 * 1024)
    r = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/attachments",
        params={"filename": "scan.tiff"},
        content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
        headers={**auth(clerk), "Content-Type": "image/tiff"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(big) and r.json()["sha256"] == hashlib.sha256(big).hexdigest()


def test_an_attachment_already_archived_links_the_original_to_the_case(
    live_api: LiveAPI, make_user: Any, engine: Engine, store: MinioStore, settings: Settings
) -> None:
    """The same scan attached to a second case is not stored twice; that case gets the archived
    original (with the reason), so its review page and export have the bytes."""
    clerk = make_user("clerk", "records-manager")
    url = live_api.url
    first = new_case(url, clerk, number="DUP-1", reviewers=[])
    second = new_case(url, clerk, number="DUP-2", reviewers=[])
    ctx = pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )
    ids = []
    for case in (first, second):
        r = httpx.post(
            f"{url}/api/v1/cases/{case['id']}/attachments",
            params={"filename": "notice.pdf"},
            content=PDF,
            headers={**auth(clerk), "Content-Type": "application/pdf"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["media_id"])
        drive(ctx, _media(engine, ids[-1]))
    original, again = _media(engine, ids[0]), _media(engine, ids[1])
    assert again.state == "duplicate" and again.duplicate_of == original.id
    links = httpx.get(f"{url}/api/v1/cases/{second['id']}/media", headers=auth(clerk)).json()
    by_item = {x["media_id"]: x for x in links}
    assert original.id in by_item and "same bytes as" in by_item[original.id]["reason"]
    got = httpx.get(f"{url}/api/v1/media/{original.id}/original", headers=auth(clerk))
    assert got.status_code == 200 and got.content == PDF
    # The first case is unchanged: one link, to the original.
    first_links = httpx.get(f"{url}/api/v1/cases/{first['id']}/media", headers=auth(clerk)).json()
    assert [x["media_id"] for x in first_links] == [original.id]


def test_a_refused_attachment_leaves_nothing_in_the_locked_bucket(
    live_api: LiveAPI, make_user: Any, store: MinioStore
) -> None:
    """The originals bucket keeps what it is given under Object Lock: a name or type the archive
    refuses must be refused before any byte is stored. Account names with "@" are fine."""
    clerk = make_user("j.doe@agency", "records-manager")
    url = live_api.url
    case = new_case(url, clerk, number="REF-1", reviewers=[])
    attach = f"{url}/api/v1/cases/{case['id']}/attachments"
    for name in ("../../etc/passwd", "a/b.pdf", "bad\x01name.pdf"):
        r = httpx.post(
            attach,
            params={"filename": name},
            content=PDF,
            headers={**auth(clerk), "Content-Type": "application/pdf"},
        )
        assert r.status_code == 400, (name, r.status_code, r.text)
    assert list(store.client.list_objects(store.originals, recursive=True)) == []
    ok = httpx.post(
        attach,
        params={"filename": "notice.pdf"},
        content=PDF,
        headers={**auth(clerk), "Content-Type": "application/pdf"},
    )
    assert ok.status_code == 201, ok.text
    assert len(list(store.client.list_objects(store.originals, recursive=True))) == 1
