"""Structured logs: one JSON object a line, with the request id and the media id on every line.

The API sets ``request_id`` (from ``X-Request-ID`` or a new one) for each request and ``media_id``
when the path names one; a worker sets ``media_id`` for the task it runs (and the id of the request
that sent it, carried in the task's headers). Lines logged outside any request or task carry them
empty, so every line has the same keys.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("custody_request_id", default="")
media_id: ContextVar[str] = ContextVar("custody_media_id", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id.get(),
            "media_id": getattr(record, "media_id", "") or media_id.get(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def use_json(*logger_names: str) -> None:
    """Every handler of the root logger and of ``logger_names`` writes JSON lines from now on (a
    handler-less logger gets one on stderr)."""
    fmt = JsonFormatter()
    for name in ("", *logger_names):
        logger = logging.getLogger(name)
        if not logger.handlers and (name == "" or not logger.propagate):
            logger.addHandler(logging.StreamHandler())
        for h in logger.handlers:
            h.setFormatter(fmt)
