"""The review page in a real browser (Debian's Chromium, headless, driven by Playwright) against the
real API, with proxies made by the real pipeline from generated media.

Artefact: tests/artifacts/review_page.png (git-ignored), a screenshot after clicking a record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive.config import Settings, get_settings
from archive.db import session_scope
from archive.ingest import pipeline
from archive.media.models import ClockSource, Media
from archive.models import Event
from archive.signing import Keyring
from archive.storage import MinioStore
from tests.archive.ingest.test_pipeline import drive, receive
from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import auth, new_case, record_body
from tests.conftest import ROOT, LiveAPI
from tests.media_samples import make_samples

ARTIFACTS = ROOT / "tests" / "artifacts"
START = datetime(2024, 6, 10, 14, 3, 0, tzinfo=UTC)
SCRIPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=3, size="640x360")


def _ready(
    engine: Engine,
    store: MinioStore,
    settings: Settings,
    path: Path,
    officer: str,
    device_time: datetime,
    offset: float,
) -> str:
    """Run a file through the real pipeline, then give it the recording time and clock offset the dock
    would have sent (receive() in test_pipeline sends none)."""
    ctx = pipeline.Context(
        engine=engine, store=store, keyring=Keyring(settings.resolved_key_dir()), settings=settings
    )
    media = receive(ctx, path, officer=officer)
    drive(ctx, media)
    with session_scope(engine) as s:
        m = s.get(Media, media.id)
        assert m is not None and m.state == "ready", (m.state if m else None, m.state_reason if m else None)
        m.recorded_at = device_time
        if m.probe is not None and m.probe.get("creation_time"):
            # The recorder's own metadata, when a sample has any, says the same time as its file.
            m.probe = {**m.probe, "creation_time": device_time.isoformat()}
        m.clock_offset_s = offset
        m.clock_source = ClockSource.MEASURED if offset else ClockSource.ASSUMED
        s.add(m)
    return media.id


def test_click_a_record_seeks_every_player(
    live_api: LiveAPI,
    make_user: Any,
    engine: Engine,
    store: MinioStore,
    settings: Settings,
    samples: dict[str, Path],
    browser: Any,
) -> None:
    clerk = make_user("clerk", "records-manager")
    reviewer = make_user("rev1", "reviewer")
    outsider = make_user("rev2", "reviewer")
    # Camera A: accurate clock. Camera B: 60 s fast, so its 14:04:00.5 is 14:03:00.5 on the case clock.
    cam_a = _ready(engine, store, settings, samples["h264"], "0815", START, 0.0)
    cam_b = _ready(
        engine, store, settings, samples["moov_at_end"], "4711", START + timedelta(seconds=60.5), 60.0
    )
    audio = _ready(engine, store, settings, samples["wav"], "0815", START, 0.0)
    photo = _ready(engine, store, settings, samples["photo"], "4711", START + timedelta(seconds=61), 60.0)

    url = live_api.url
    case = new_case(url, clerk, number="2024-0815", reviewers=["rev1"], title="Roadside check <b>bold?</b>")
    records = f"{url}/api/v1/cases/{case['id']}/records"
    first = httpx.post(
        records,
        json=record_body(
            START + timedelta(seconds=1), START + timedelta(seconds=1.5), ["0815", "4711"], title="Arrival"
        ),
        headers=auth(clerk),
    )
    assert first.status_code == 201 and set(first.json()["linked_media"]) == {cam_a, cam_b, audio, photo}
    scan = httpx.post(
        f"{url}/api/v1/cases/{case['id']}/attachments",
        params={"filename": "statement-signed.pdf"},
        content=b"%PDF-1.4\n%%EOF\n",
        headers={**auth(clerk), "Content-Type": "application/pdf"},
    )
    assert scan.status_code == 201, scan.text
    second = httpx.post(
        records,
        json=record_body(
            START + timedelta(seconds=2),
            START + timedelta(seconds=2.5),
            [],
            title="Statement " + SCRIPT,
            body="Driver said: " + SCRIPT,
            attachments=[scan.json()["media_id"]],
        ),
        headers=auth(clerk),
    )
    assert second.status_code == 201

    # CSP bypassed for the test's own evaluate() calls; it also proves escaping alone keeps the script
    # in a record from running. The CSP itself is checked on the response headers below.
    page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/cases/{case['id']}#token={reviewer}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert "token" not in page.url  # dropped from the address bar at once
    page.wait_for_function(
        "[...document.querySelectorAll('video, audio')].every(v => v.readyState >= 1)", timeout=20_000
    )
    assert page.eval_on_selector_all("video", "vs => vs.length") == 2

    page.locator(".record", has_text="Statement").click()
    page.wait_for_timeout(300)
    times = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('figure')].map(f => "
        "[f.dataset.mediaId, (f.querySelector('video, audio') || {currentTime: null}).currentTime]))"
    )
    # The record starts at 14:03:02: 2.0 s into camera A and the audio, 1.5 s into camera B.
    assert times[cam_a] == pytest.approx(2.0, abs=0.05)
    assert times[cam_b] == pytest.approx(1.5, abs=0.05)
    assert times[audio] == pytest.approx(2.0, abs=0.05)
    current = page.eval_on_selector_all(".record.current", "rs => rs.map(r => r.textContent)")
    assert len(current) == 1 and "Statement" in current[0]

    # Text is shown as text: the script is on the page, literally, and never ran.
    assert page.evaluate("window.__pwned") is None
    assert SCRIPT in page.locator(".record", has_text="Statement").inner_text()
    assert "<b>bold?</b>" in page.locator("#case-title").inner_text()
    assert "attachments: statement-signed.pdf" in page.locator(".record", has_text="Statement").inner_text()
    assert "60 s fast (measured)" in page.locator(f"figure[data-media-id='{cam_b}']").inner_text()

    page.locator(".record", has_text="Arrival").click()
    page.wait_for_timeout(300)
    assert page.evaluate(
        f"document.querySelector(\"figure[data-media-id='{cam_b}'] video\").currentTime"
    ) == pytest.approx(0.5, abs=0.05)
    page.wait_for_timeout(1000)  # let the seeked frames paint before the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review_page.png"), full_page=True)

    # While playing, the highlight follows the case clock: from "Arrival" (14:03:01) on to "Statement"
    # (14:03:02), and every player runs on past the moment it was seeked to.
    current = page.eval_on_selector_all(".record.current", "rs => rs.map(r => r.textContent)")
    assert len(current) == 1 and "Arrival" in current[0]
    page.locator("#play").click()
    page.wait_for_function(
        "[...document.querySelectorAll('.record.current')].some(r => r.textContent.includes('Statement'))",
        timeout=15_000,
    )
    page.wait_for_function(
        f"document.querySelector(\"figure[data-media-id='{cam_a}'] video\").currentTime > 1.2 && "
        f"document.querySelector(\"figure[data-media-id='{cam_b}'] video\").currentTime > 0.7",
        timeout=15_000,
    )
    if page.locator("#play").inner_text() == "Pause all":  # (it stops by itself at the case's end)
        page.locator("#play").click()
    assert page.eval_on_selector_all("video, audio", "vs => vs.every(v => v.paused)")
    assert errors == []

    # Views and streams are on record: who, what, from where, through which case.
    with Session(engine) as s:
        evs = list(s.exec(select(Event).where(Event.actor == "user:rev1")))
    assert any(e.action == "case.timeline" and e.details.get("via") == "page" for e in evs)
    streamed = {
        e.subject_id for e in evs if e.action == "media.stream" and e.details.get("case") == case["id"]
    }
    assert {cam_a, cam_b, audio, photo} <= streamed
    # The players read from storage on presigned URLs handed out per access (logged above), unless
    # objects are encrypted at rest (SSE-C, the default): a browser cannot read those on a URL, and
    # the API streams them.
    via = "storage" if get_settings().browsers_stream_from_storage() else None
    assert all(
        e.details.get("via") == via
        for e in evs
        if e.action == "media.stream" and e.details.get("what") == "proxy"
    )
    assert all(e.client_addr == "127.0.0.1" for e in evs)

    # The streaming cookie is HttpOnly, SameSite=Strict and only sent to the media routes.
    cookie = next(c for c in page.context.cookies() if c["name"] == "custody_view")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/api/v1/media"
    assert page.evaluate("document.cookie") == ""
    # Without token or cookie a proxy is refused; a reviewer not on the case sees an error, not the case.
    assert httpx.get(f"{url}/api/v1/media/{cam_a}/proxy").status_code == 401
    csp = httpx.get(f"{url}/cases/{case['id']}").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert f"media-src 'self' {get_settings().public_s3_origin()};" in csp  # the one S3 origin
    other = browser.new_page()
    other.goto(f"{url}/cases/{case['id']}#token={outsider}")
    other.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "404" in other.locator("#error").inner_text()
    assert other.locator(".record").count() == 0
