"""The signed document of a record version: built the same way by the server and by ``custody records
sign`` from the record's public JSON, so an author signs exactly what the archive stores.

The body is represented by its SHA-256 (the document stays small; the digest binds every character),
times by their UTC ISO form.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from archive.clock import as_utc
from archive.signing import canonical_json

PURPOSE = "custody.record-version.v1"


def _time(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return as_utc(moment).isoformat()


def record_document(rec: Any) -> dict[str, Any]:
    """``rec``: a TextRecord row, a RecordPublic, or the dict the API returns for one version."""

    def get(key: str) -> Any:
        return rec[key] if isinstance(rec, dict) else getattr(rec, key)

    return {
        "purpose": PURPOSE,
        "case_id": str(get("case_id")),
        "record_id": str(get("record_id")),
        "version": int(get("version")),
        "stage": str(get("stage")),
        "doc_kind": str(get("doc_kind")),
        "title": str(get("title")),
        "author": str(get("author")),
        "officers": sorted(str(o) for o in get("officers")),
        "occurred_from": _time(get("occurred_from")),
        "occurred_to": _time(get("occurred_to")),
        "attachments": [str(a) for a in get("attachments")],
        "body_sha256": hashlib.sha256(str(get("body")).encode()).hexdigest(),
    }


def document_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()
