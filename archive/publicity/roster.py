"""The enforcement staff roster and the qualification rule.

"未经执法资格考试合格，不得授予执法资格，不得从事执法活动" (seed 001): a text record that names, as an
enforcing officer, someone without a certificate valid on the record's date is refused; a recording
docked by such an officer is archived (evidence is never refused) and flagged.

The rule applies once the roster is in use, i.e. holds at least one entry: an agency that has not yet
loaded its roster is not blocked from recording its work (docs/publicity.md says so).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select

from archive.access import Permission, authorize
from archive.accounts.models import User
from archive.clock import Clock, utcnow
from archive.errors import Conflict, InvalidInput, NotFound
from archive.i18n import _
from archive.media.models import Media
from archive.publicity.errors import RosterImportError, UnqualifiedOfficer
from archive.publicity.models import QualificationFlag, RosterEntry
from archive.publicity.services import local_date, log

FIELDS = (
    "officer",
    "name",
    "unit",
    "post",
    "badge_no",
    "certificate_no",
    "category",
    "area",
    "valid_from",
    "valid_to",
)
REQUIRED = ("officer", "name", "unit", "certificate_no", "category", "area", "valid_from", "valid_to")
# Column titles an agency's spreadsheet may carry instead of the English names.
ZH_HEADERS = {
    "警号或工号": "officer",
    "人员编号": "officer",
    "姓名": "name",
    "单位": "unit",
    "职务": "post",
    "警号": "badge_no",
    "证件编号": "certificate_no",
    "执法证号": "certificate_no",
    "执法类别": "category",
    "执法区域": "area",
    "有效期起": "valid_from",
    "有效期止": "valid_to",
}
MAX_IMPORT_ROWS = 20_000
ATTACHMENT_DEVICE = "case-attachment"  # scans and PDFs uploaded to a case are not recordings
MAX_FIELD = {"officer": 64, "badge_no": 64, "certificate_no": 64}


@dataclass(frozen=True)
class RosterInput:
    officer: str
    name: str
    unit: str
    certificate_no: str
    category: str
    area: str
    valid_from: date
    valid_to: date
    post: str = ""
    badge_no: str = ""

    def checked(self) -> RosterInput:
        values: dict[str, Any] = {
            k: (v.strip() if isinstance(v, str) else v) for k, v in self.__dict__.items()
        }
        for name in REQUIRED:
            if values[name] in ("", None):
                raise InvalidInput(_("field {field} must not be empty").format(field=name))
        for name, limit in MAX_FIELD.items():
            if len(values[name]) > limit:
                raise InvalidInput(
                    _("field {field} is longer than {limit} characters").format(field=name, limit=limit)
                )
        for name in ("name", "unit", "post", "category", "area"):
            if len(values[name]) > 200:
                raise InvalidInput(_("field {field} is longer than 200 characters").format(field=name))
        if values["valid_to"] < values["valid_from"]:
            raise InvalidInput(_("valid_to is before valid_from"))
        return RosterInput(**values)


def roster_in_use(session: Session) -> bool:
    return bool(session.exec(select(exists().where(col(RosterEntry.id).is_not(None)))).one())


def entries(session: Session, user: User, *, officer: str | None = None) -> list[RosterEntry]:
    authorize(user, Permission.ROSTER_READ)
    stmt = select(RosterEntry)
    if officer:
        stmt = stmt.where(RosterEntry.officer == officer)
    return list(
        session.exec(stmt.order_by(col(RosterEntry.unit), col(RosterEntry.name), col(RosterEntry.id)))
    )


def _by_certificate(session: Session, certificate_no: str) -> RosterEntry | None:
    return session.exec(select(RosterEntry).where(RosterEntry.certificate_no == certificate_no)).first()


def add_entry(
    session: Session, user: User, data: RosterInput, *, addr: str = "", clock: Clock = utcnow
) -> RosterEntry:
    authorize(user, Permission.ROSTER_MANAGE)
    data = data.checked()
    if _by_certificate(session, data.certificate_no) is not None:
        raise Conflict(_("certificate {number} is already in the roster").format(number=data.certificate_no))
    now = clock()
    entry = RosterEntry(**data.__dict__, created_by=user.name, created_at=now, updated_at=now)
    session.add(entry)
    session.flush()
    log(
        session, user, "publicity.roster.add", "roster", str(entry.id), addr=addr, clock=clock, **_dump(entry)
    )
    return entry


def _dump(entry: RosterEntry) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, date) else v) for k, v in entry.model_dump(include=set(FIELDS)).items()
    }


def _get(session: Session, entry_id: int) -> RosterEntry:
    entry = session.get(RosterEntry, entry_id)
    if entry is None:
        raise NotFound(_("no roster entry {id}").format(id=entry_id))
    return entry


def update_entry(
    session: Session, user: User, entry_id: int, data: RosterInput, *, addr: str = "", clock: Clock = utcnow
) -> RosterEntry:
    """Correct an entry (all fields). Before and after go to the custody log."""
    authorize(user, Permission.ROSTER_MANAGE)
    data = data.checked()
    entry = _get(session, entry_id)
    other = _by_certificate(session, data.certificate_no)
    if other is not None and other.id != entry.id:
        raise Conflict(_("certificate {number} is already in the roster").format(number=data.certificate_no))
    before = _dump(entry)
    for k, v in data.__dict__.items():
        setattr(entry, k, v)
    after = _dump(entry)
    if before == after:
        return entry
    entry.updated_at = clock()
    session.add(entry)
    session.flush()
    log(
        session,
        user,
        "publicity.roster.update",
        "roster",
        str(entry.id),
        addr=addr,
        clock=clock,
        before=before,
        after=after,
    )
    return entry


def revoke_entry(
    session: Session, user: User, entry_id: int, reason: str, *, addr: str = "", clock: Clock = utcnow
) -> RosterEntry:
    """Suspend or revoke a certificate from now on (its earlier validity stays on record)."""
    authorize(user, Permission.ROSTER_MANAGE)
    if not reason.strip():
        raise InvalidInput(_("a revocation needs a reason"))
    entry = _get(session, entry_id)
    if entry.revoked_at is not None:
        raise Conflict(_("certificate {number} is already revoked").format(number=entry.certificate_no))
    entry.revoked_at = clock()
    entry.revoke_reason = reason.strip()
    entry.updated_at = entry.revoked_at
    session.add(entry)
    session.flush()
    log(
        session,
        user,
        "publicity.roster.revoke",
        "roster",
        str(entry.id),
        addr=addr,
        clock=clock,
        certificate_no=entry.certificate_no,
        reason=entry.revoke_reason,
    )
    return entry


# --------------------------------------------------------------------------- CSV import


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM spreadsheet programs write), else GB18030 (what a Chinese
    Excel saves as "CSV"). Both are strict: a file that is neither is refused, never guessed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise RosterImportError(_("the file is neither UTF-8 nor GB18030 text")) from exc


def _parse_date(value: str, row: int, field: str) -> date:
    text = value.strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        parts = text.split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                return date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                pass
    raise RosterImportError(
        _("row {row}, field {field}: {value!r} is not a date (YYYY-MM-DD)").format(
            row=row, field=field, value=value[:40]
        )
    )


def parse_csv(data: bytes) -> list[tuple[int, RosterInput]]:
    """Every row of the file as input, or :class:`RosterImportError` naming the first bad row and
    field (rows numbered as a spreadsheet shows them: the header is row 1)."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration as exc:
        raise RosterImportError(_("the file is empty")) from exc
    except csv.Error as exc:
        raise RosterImportError(_("row 1: {error}").format(error=exc)) from exc
    columns = [ZH_HEADERS.get(h.strip(), h.strip()) for h in header]
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise RosterImportError(
            _("row 1: unknown column {column!r}; the columns are {columns}").format(
                column=unknown[0][:40], columns=", ".join(FIELDS)
            )
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise RosterImportError(_("row 1: column {column} is missing").format(column=missing[0]))
    out: list[tuple[int, RosterInput]] = []
    seen: dict[str, int] = {}
    try:
        for index, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                raise RosterImportError(
                    _("row {row}: {n} fields, the header has {m}").format(
                        row=index, n=len(cells), m=len(columns)
                    )
                )
            if len(out) >= MAX_IMPORT_ROWS:
                raise RosterImportError(_("more than {n} rows").format(n=MAX_IMPORT_ROWS))
            raw = dict(zip(columns, cells, strict=True))
            for field in REQUIRED:
                if not raw.get(field, "").strip():
                    raise RosterImportError(
                        _("row {row}, field {field}: must not be empty").format(row=index, field=field)
                    )
            values: dict[str, Any] = {f: raw.get(f, "").strip() for f in FIELDS}
            values["valid_from"] = _parse_date(raw["valid_from"], index, "valid_from")
            values["valid_to"] = _parse_date(raw["valid_to"], index, "valid_to")
            try:
                item = RosterInput(**values).checked()
            except InvalidInput as exc:
                raise RosterImportError(_("row {row}: {error}").format(row=index, error=exc)) from exc
            if item.certificate_no in seen:
                raise RosterImportError(
                    _("row {row}, field certificate_no: {number} repeats row {first}").format(
                        row=index, number=item.certificate_no, first=seen[item.certificate_no]
                    )
                )
            seen[item.certificate_no] = index
            out.append((index, item))
    except csv.Error as exc:
        raise RosterImportError(_("row {row}: {error}").format(row=reader.line_num, error=exc)) from exc
    if not out:
        raise RosterImportError(_("the file has a header but no rows"))
    return out


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int


def import_csv(
    session: Session, user: User | str, data: bytes, *, addr: str = "", clock: Clock = utcnow
) -> ImportResult:
    """Add or correct (by certificate number) every row of the file, or nothing: the whole file is
    parsed and checked before the first row is written, and the caller's transaction holds them all.

    ``user`` is the admin account, or a ``system:...`` actor for the operator's own command line on
    the server (as ``custody users add`` acts)."""
    if isinstance(user, User):
        authorize(user, Permission.ROSTER_MANAGE)
    who = user.name if isinstance(user, User) else user
    rows = parse_csv(data)
    added = updated = unchanged = 0
    for _row, item in rows:
        entry = _by_certificate(session, item.certificate_no)
        if entry is None:
            now = clock()
            session.add(RosterEntry(**item.__dict__, created_by=who, created_at=now, updated_at=now))
            added += 1
            continue
        before = _dump(entry)
        for k, v in item.__dict__.items():
            setattr(entry, k, v)
        if _dump(entry) == before:
            unchanged += 1
        else:
            entry.updated_at = clock()
            session.add(entry)
            updated += 1
    session.flush()
    log(
        session,
        user,
        "publicity.roster.import",
        "roster",
        "csv",
        addr=addr,
        clock=clock,
        rows=len(rows),
        added=added,
        updated=updated,
        unchanged=unchanged,
    )
    return ImportResult(added, updated, unchanged)


# --------------------------------------------------------------------------- qualification


def qualification(session: Session, officer: str, on: date) -> tuple[bool, str]:
    """Whether ``officer`` holds a certificate valid on ``on``, and if not, why not (in words)."""
    rows = list(session.exec(select(RosterEntry).where(RosterEntry.officer == officer)))
    if not rows:
        return False, _("{officer} is not in the enforcement roster").format(officer=officer)
    reasons: list[str] = []
    for e in rows:
        revoked_on = local_date(e.revoked_at) if e.revoked_at is not None else None
        if e.valid_from <= on <= e.valid_to and (revoked_on is None or on < revoked_on):
            return True, ""
        if revoked_on is not None and on >= revoked_on:
            reasons.append(
                _("certificate {number} was revoked on {day} ({reason})").format(
                    number=e.certificate_no, day=revoked_on, reason=e.revoke_reason
                )
            )
        elif on < e.valid_from:
            reasons.append(
                _("certificate {number} is valid only from {day}").format(
                    number=e.certificate_no, day=e.valid_from
                )
            )
        else:
            reasons.append(
                _("certificate {number} expired on {day}").format(number=e.certificate_no, day=e.valid_to)
            )
    name = rows[0].name
    return False, _("{officer} ({name}) has no enforcement certificate valid on {day}: {reasons}").format(
        officer=officer, name=name, day=on, reasons="; ".join(reasons)
    )


def check_enforcing_officers(session: Session, officers: Sequence[str], on: date) -> None:
    """Hook for text records: refuse (422) a record naming an unqualified enforcing officer."""
    if not officers or not roster_in_use(session):
        return
    problems = []
    for officer in officers:
        ok, why = qualification(session, officer, on)
        if not ok:
            problems.append(why)
    if problems:
        raise UnqualifiedOfficer(
            _("staff without a valid enforcement certificate may not enforce: {problems}").format(
                problems=" | ".join(problems)
            )
        )


def flag_recording(session: Session, media: Media) -> QualificationFlag | None:
    """Hook for ingest: flag (never refuse) a recording docked by an officer who had no valid
    certificate on the day it was recorded (the day it arrived when the recorder gave no time)."""
    if media.device_serial == ATTACHMENT_DEVICE or not roster_in_use(session):
        return None
    on = local_date(media.recorded_at or media.received_at)
    ok, why = qualification(session, media.officer_badge, on)
    if ok or session.exec(select(QualificationFlag).where(QualificationFlag.media_id == media.id)).first():
        return None
    flag = QualificationFlag(media_id=media.id, officer=media.officer_badge, on_date=on, reason=why)
    session.add(flag)
    session.flush()
    log(
        session,
        "system:publicity",
        "publicity.qualification.flag",
        "media",
        media.id,
        officer=media.officer_badge,
        on=str(on),
        reason=why,
    )
    return flag


def flags(session: Session, user: User, *, limit: int = 200, offset: int = 0) -> list[QualificationFlag]:
    authorize(user, Permission.PUBLICITY_READ)
    stmt = select(QualificationFlag).order_by(
        col(QualificationFlag.created_at).desc(), col(QualificationFlag.id)
    )
    return list(session.exec(stmt.offset(offset).limit(limit)))


def public_roster(session: Session, on: date) -> list[RosterEntry]:
    """Certificates valid on ``on`` and not revoked: what the public roster lists."""
    stmt = (
        select(RosterEntry)
        .where(
            col(RosterEntry.valid_from) <= on,
            col(RosterEntry.valid_to) >= on,
            col(RosterEntry.revoked_at).is_(None),
        )
        .order_by(col(RosterEntry.unit), col(RosterEntry.name), col(RosterEntry.id))
    )
    return list(session.exec(stmt))
