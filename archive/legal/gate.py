"""The gate, enforced where every write passes: the ORM flush.

Whatever moves a case into the ``decision`` stage (or past it, to ``service`` or ``execution``), opens
a case directly in one of those stages, or writes a record of the ``decision`` stage or a ``decision``
document, does it by flushing a ``Case`` or ``TextRecord``. This ``before_flush`` hook asks
:func:`archive.legal.services.decision_blocker` about each such change and raises
:class:`archive.legal.errors.GateClosed` (409) before any SQL runs, so no route, CLI command or
service call, present or future, gets around the rule; the unit of work then rolls back whole.
A passage is logged as ``legal.gate.pass`` naming the version decided and its SHA-256.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session as OrmSession

from archive.cases.models import Case, DocumentKind, Stage, TextRecord
from archive.clock import utcnow
from archive.legal.errors import GateClosed
from archive.models import Event

DECIDED_STAGES = frozenset({Stage.DECISION, Stage.SERVICE, Stage.EXECUTION})


def _entering(case: Case, new: bool) -> bool:
    if Stage(case.stage) not in DECIDED_STAGES:
        return False
    if new:
        return True
    history = inspect(case).attrs.stage.history
    if not history.has_changes():
        return False
    return not any(Stage(old) in DECIDED_STAGES for old in history.deleted if old is not None)


def _decides(record: TextRecord) -> bool:
    return Stage(record.stage) is Stage.DECISION or DocumentKind(record.doc_kind) is DocumentKind.DECISION


def check(session: OrmSession) -> None:
    from archive.legal.services import decision_blocker  # services import cases; cases import this

    todo: list[tuple[str, dict[str, Any]]] = []
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Case) and _entering(obj, obj in session.new):
            todo.append((obj.id, {"stage": str(Stage(obj.stage))}))
        elif isinstance(obj, TextRecord) and obj in session.new and _decides(obj):
            todo.append(
                (
                    obj.case_id,
                    {"record": obj.record_id, "record_version": obj.version, "doc_kind": str(obj.doc_kind)},
                )
            )
    if not todo:
        return
    with session.no_autoflush:
        for case_id, what in todo:
            why, sub = decision_blocker(session, case_id)  # type: ignore[arg-type]
            if why is not None:
                raise GateClosed(why, case_id)
            assert sub is not None
            session.add(
                Event(
                    at=utcnow(),
                    actor="system:legal-gate",
                    action="legal.gate.pass",
                    subject_type="case",
                    subject_id=case_id,
                    details={
                        **what,
                        "submission": sub.id,
                        "version": sub.version,
                        "digest": sub.digest,
                        "required": sub.required,
                        "rule": sub.rule_id,
                    },
                )
            )


@event.listens_for(OrmSession, "before_flush")
def _before_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    check(session)
