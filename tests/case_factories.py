"""Factories for case tests: media rows as the ingest pipeline leaves them (no bytes needed for the
rules that only read times), and API helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from archive.accounts.models import Device, DeviceStatus, Officer
from archive.db import session_scope
from archive.media.models import ClockSource, Media, MediaState
from archive.models import new_id

T = datetime(2024, 6, 10, 10, 0, tzinfo=UTC)  # a record window starts here in most tests


def media_row(
    engine: Engine,
    *,
    officer: str = "0815",
    device: str = "BC-4711",
    recorded_at: datetime | None,
    offset_s: float = 0.0,
    duration_s: float | None = 60.0,
    source: ClockSource = ClockSource.MEASURED,
    state: MediaState = MediaState.READY,
    device_owner: str | None = None,
    kind: str = "video",
) -> str:
    """A media item recorded at ``recorded_at`` by the device clock, ``offset_s`` fast."""
    with session_scope(engine) as s:
        if s.get(Officer, officer) is None:
            s.add(Officer(badge=officer, name=officer))
        if device_owner and s.get(Officer, device_owner) is None:
            s.add(Officer(badge=device_owner, name=device_owner))
        if s.get(Device, device) is None:
            # Registered (issue 10, finding 3): a row as an administrator's registration leaves it.
            s.add(
                Device(serial=device, officer_badge=device_owner or officer, status=DeviceStatus.REGISTERED)
            )
        s.flush()
        mid = new_id()
        sha = new_id().replace("-", "")[:32] * 2
        s.add(
            Media(
                id=mid,
                sha256=sha,
                archived_sha256=sha if state.archived else None,
                size=1000,
                file_name=f"{mid[:8]}.mp4",
                officer_badge=officer,
                device_serial=device,
                recorded_at=recorded_at,
                clock_offset_s=offset_s,
                clock_source=source,
                state=state,
                object_key=f"originals/{mid}",
                probe=None if duration_s is None else {"kind": kind, "duration_s": duration_s},
            )
        )
    return mid


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_case(url: str, token: str, number: str = "2024-001", **extra: Any) -> dict[str, Any]:
    body = {"number": number, "title": "Traffic stop, Hauptstrasse", "kind": "administrative", **extra}
    r = httpx.post(f"{url}/api/v1/cases", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


def record_body(start: datetime, end: datetime, officers: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "stage": "investigation",
        "doc_kind": "inquiry-transcript",
        "author": "0815",
        "title": "Inquiry at the roadside",
        "officers": officers,
        "occurred_from": start.isoformat(),
        "occurred_to": end.isoformat(),
        "body": "The driver stated that the light was green.",
        **extra,
    }
