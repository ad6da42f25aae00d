"""The custody log: who did what, when, from where, with what outcome.

Rows are only ever inserted (the database refuses UPDATE and DELETE on ``events``). Every state
change in the archive calls :func:`record` in the same transaction as the change itself, so a
change and its log entry commit or vanish together.

Each event gets its own random key (``addr_key``): the Merkle log hashes a commitment to the
client address made with it, not the address (archive.ledger.services.leaf_document), so an export
can prove the entry without handing out the address of whoever acted.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from archive.clock import Clock, utcnow
from archive.models import Event, Outcome, new_addr_key

SYSTEM_WORKER = "system:worker"
SYSTEM_API = "system:api"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    outcome: Outcome = Outcome.OK,
    client_addr: str = "",
    details: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> Event:
    ev = Event(
        at=clock(),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        outcome=outcome,
        client_addr=client_addr,
        details=details or {},
        addr_key=new_addr_key(),
    )
    session.add(ev)
    session.flush()
    return ev
