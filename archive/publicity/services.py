"""Enforcement publicity: what every part shares, and the one place the rest of the archive calls.

The domain is split by concern (each a module beside this one):

- :mod:`archive.publicity.roster`: the staff roster, CSV import, the qualification rule;
- :mod:`archive.publicity.documents`: advance documents (事前公开), versioned and approved;
- :mod:`archive.publicity.decisions`: decisions, deadlines, redaction, approval, withdrawal;
- :mod:`archive.publicity.redaction`: the redaction engine (pure);
- :mod:`archive.publicity.webhooks`: signed pushes to the external platform;
- :mod:`archive.publicity.report`: the signed yearly report;
- :mod:`archive.publicity.public`: what the unauthenticated public face reads.

Services take the session, the acting user and inputs; they authorize through
:func:`archive.access.authorize`, write custody-log events in the same transaction and flush; the
caller's unit of work commits.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from archive import events
from archive.access import actor
from archive.accounts.models import User
from archive.clock import Clock, as_utc, utcnow
from archive.config import get_settings
from archive.i18n import _
from archive.publicity.errors import ConcurrentChange
from archive.restricted.models import SubjectKind
from archive.restricted.services import active_mark
from archive.signing import canonical_json


def local_date(moment: datetime, timezone: str | None = None) -> date:
    """The agency's calendar date of a UTC moment (legal deadlines are local dates)."""
    return as_utc(moment).astimezone(ZoneInfo(timezone or get_settings().timezone)).date()


def today(clock: Clock = utcnow, timezone: str | None = None) -> date:
    return local_date(clock(), timezone)


def is_restricted(session: Session, *, case_id: str, record_id: str | None = None) -> bool:
    """Whether the decision document is marked state secret, trade secret or personal privacy
    (国家秘密、商业秘密、个人隐私, issue 13's marks), which is never published.

    Every publication path calls it (approval refuses a restricted decision, the public face hides
    one that became restricted after publication). Marks sit on records and recordings; a case
    carries grants only, so the decision's own record is what is asked about."""
    del case_id
    return record_id is not None and active_mark(session, SubjectKind.RECORD, record_id) is not None


def add_version(session: Session, row: SQLModel, what: str) -> None:
    """Store the next version of something (its number was max + 1 when read). Two writers may read the
    same max at once; the unique (subject, version) key stops the second, which gets a 409 naming
    what to do, not a 500, and its transaction stays usable (a savepoint)."""
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConcurrentChange(
            _("someone else stored a new version of {what} at the same moment; reload and try again").format(
                what=what
            )
        ) from exc


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def log(
    session: Session,
    user: User | str,
    action: str,
    subject_type: str,
    subject_id: str,
    *,
    addr: str = "",
    clock: Clock = utcnow,
    **details: Any,
) -> None:
    events.record(
        session,
        actor=actor(user),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        client_addr=addr,
        details=details,
        clock=clock,
    )
