"""What verification finds: value objects, no tables (results are recorded as custody events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from archive.errors import IntegrityError


class Problem(StrEnum):
    OBJECT_MISSING = "object missing"
    BYTES_CHANGED = "bytes changed"
    ROW_CHANGED = "database row changed"
    MANIFEST_MISSING = "manifest missing"
    MANIFEST_SIGNATURE_INVALID = "manifest signature invalid"
    MANIFEST_REPLACED = "manifest replaced"
    LOG_ENTRY_CHANGED = "log entry changed"
    LOG_ENTRY_REMOVED = "log entry removed"
    CHECKPOINT_INVALID = "checkpoint signature invalid"
    TOMBSTONE_MISSING = "tombstone missing"
    TOMBSTONE_INVALID = "tombstone signature invalid"
    # Against the checkpoints published outside the database (archive.ledger.publish)
    LOG_ROLLED_BACK = "log rolled back"
    PUBLISHED_ENTRY_MISSING = "published entry missing"
    PUBLISHED_UNREADABLE = "published checkpoints unreadable"
    PUBLISHED_UNLOCKED = "published object not locked"


@dataclass(frozen=True)
class Discrepancy:
    problem: Problem
    subject: str  # "media <id>", "event <id>", "checkpoint <id>": where an auditor looks next
    detail: str

    def __str__(self) -> str:
        return f"{self.problem.upper()}: {self.subject}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"problem": self.problem.value, "subject": self.subject, "detail": self.detail}


@dataclass
class Report:
    started_at: datetime
    finished_at: datetime | None = None
    media_checked: int = 0
    objects_hashed: int = 0
    bytes_hashed: int = 0
    signatures_checked: int = 0
    log_entries_checked: int = 0
    checkpoints_checked: int = 0
    unsequenced_events: int = 0
    published_tree_size: int = 0  # the last checkpoint published outside the database (0: none)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def add(self, problem: Problem, subject: str, detail: str) -> None:
        self.discrepancies.append(Discrepancy(problem, subject, detail))

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        found = self.discrepancies if limit is None else self.discrepancies[:limit]
        return {
            "ok": self.ok,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "media_checked": self.media_checked,
            "objects_hashed": self.objects_hashed,
            "bytes_hashed": self.bytes_hashed,
            "signatures_checked": self.signatures_checked,
            "log_entries_checked": self.log_entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "unsequenced_events": self.unsequenced_events,
            "published_tree_size": self.published_tree_size,
            "discrepancy_count": len(self.discrepancies),
            "discrepancies": [d.to_json() for d in found],
        }


class VerificationFailed(IntegrityError):
    """Raised by :func:`archive.audit.services.verify_or_raise`; carries the full report."""

    code = "audit.verification_failed"

    def __init__(self, report: Report) -> None:
        lines = "; ".join(str(d) for d in report.discrepancies[:5])
        more = len(report.discrepancies) - 5
        super().__init__(
            f"{len(report.discrepancies)} discrepancies: {lines}" + (f" (+{more} more)" if more > 0 else "")
        )
        self.report = report
