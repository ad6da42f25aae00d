"""`custody legal-review ...` and `custody calendar ...`: the legal office's lists and the data
(catalogue, working-day calendar) it keeps, from the host. Reads act as the host operator (an
auditor's view); changes name the account they are made as (``--as``), and are logged under it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archive.config import get_settings
from archive.i18n import _
from archive.localtime import format_local
from cli.i18n import Group


def _engine() -> Any:
    from archive.db import make_engine

    return make_engine(get_settings().resolved_database_url())


def _operator() -> Any:
    from archive.accounts.models import Role, User

    # Read-only: the host operator's view (an auditor's), never stored.
    return User(name="cli", role=Role.AUDITOR, token_hash="")


def _account(session: Any, name: str) -> Any:
    from sqlmodel import select

    from archive.accounts.models import User

    user = session.exec(select(User).where(User.name == name, User.disabled == False)).first()  # noqa: E712
    if user is None:
        raise click.ClickException(_("no active account {name}").format(name=name))
    return user


@click.group(name="legal-review", cls=Group)
def legal_group() -> None:
    """Legal review of major enforcement decisions (重大执法决定法制审核)."""


@legal_group.command("overdue")
@click.option("--all", "show_all", is_flag=True, help="Every pending review, not only the overdue ones.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def overdue(show_all: bool, limit: int, as_json: bool) -> None:
    """Reviews past their five-working-day limit (agency-local dates), oldest deadline first."""
    from sqlmodel import Session

    from archive.errors import CustodyError
    from archive.legal import services as legal

    with Session(_engine()) as session:
        try:
            listed = legal.overdue(
                session, _operator(), limit=limit, overdue_only=not show_all, timezone=get_settings().timezone
            )
        except CustodyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(listed.model_dump_json(indent=1))
        return
    line = _("{due}  {case}  v{version}  {kind}  rule {rule}  submitted by {user} at {time}")
    for item in listed.items:
        due = item.due.isoformat() + (f" ({item.due_note})" if item.due_provisional else "")
        click.echo(
            line.format(
                due=due,
                case=item.case_number,
                version=item.version,
                kind=item.decision_kind,
                rule=item.rule_id or "-",
                user=item.submitted_by,
                time=format_local(item.submitted_at),
            )
        )
    what = _("pending") if show_all else _("overdue")
    click.echo(_("{n} {what} review(s) on {today}").format(n=listed.total, what=what, today=listed.today))


@legal_group.command("status")
@click.argument("case_id")
def status(case_id: str) -> None:
    """A case's legal review as JSON (the same as GET /api/v1/cases/{id}/legal-review)."""
    from sqlmodel import Session

    from archive.errors import CustodyError
    from archive.legal import services as legal

    with Session(_engine()) as session:
        try:
            st = legal.review_status(session, _operator(), case_id, timezone=get_settings().timezone)
        except CustodyError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(st.model_dump_json(indent=1))


@legal_group.command("catalogue")
@click.option("--set", "new_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--reason", default="", help="Why the catalogue changes (required with --set).")
@click.option("--as", "as_name", default=None, help="The account the change is made as (an admin).")
def catalogue(new_file: Path | None, reason: str, as_name: str | None) -> None:
    """Print the catalogue in force, or install the next version with --set FILE --reason TEXT --as NAME."""
    from sqlmodel import Session

    from archive.db import session_scope
    from archive.errors import CustodyError
    from archive.legal import services as legal

    engine = _engine()
    if new_file is None:
        with Session(engine) as session:
            click.echo(json.dumps(legal.current_catalogue(session).to_json(), indent=1, ensure_ascii=False))
        return
    if not as_name:
        raise click.ClickException(_("--as NAME is required to change the catalogue"))
    try:
        with session_scope(engine) as session:
            row = legal.set_catalogue(
                session, _account(session, as_name), json.loads(new_file.read_text(encoding="utf-8")), reason
            )
            version = row.version
    except (CustodyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_("legal review catalogue version {v} in force").format(v=version))


@click.group(name="calendar", cls=Group, invoke_without_command=True)
@click.pass_context
def calendar_group(ctx: click.Context) -> None:
    """China's working-day calendar: statutory holidays, make-up days, the operator's overrides.
    Without a command: its status (as `custody calendar status`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(calendar_status)


@calendar_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def calendar_status(as_json: bool) -> None:
    """The calendar in force, the years it knows, its warnings (a year it should know by now, with the
    command that fixes it) and the deadlines that are provisional meanwhile. Exit status 1 on a warning."""
    from sqlmodel import Session

    from archive.workdays import provisional
    from archive.workdays.services import status

    with Session(_engine()) as session:
        st = status(session, timezone=get_settings().timezone)
    if as_json:
        out = {
            "label": st.label,
            "version": st.version,
            "today": st.today.isoformat(),
            "warn_from": st.warn_from.isoformat(),
            "known": {str(y): k for y, k in st.known.items()},
            "warnings": [
                {"year": w.year, "since": w.since.isoformat(), "message": w.message, "command": w.command}
                for w in st.warnings
            ],
            "provisional": [
                {
                    "kind": i.kind,
                    "subject_type": i.subject_type,
                    "subject_id": i.subject_id,
                    "case_id": i.case_id,
                    "ref": i.ref,
                    "due": i.due.isoformat(),
                    "weekdays_due": i.weekdays_due.isoformat() if i.weekdays_due else None,
                    "missing_years": i.missing_years,
                }
                for i in st.provisional
            ],
        }
        click.echo(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        click.echo(_("in force: {label}; today {today}").format(label=st.label, today=st.today.isoformat()))
        for year, known in st.known.items():
            click.echo((_("{year}: known") if known else _("{year}: NOT KNOWN")).format(year=year))
        click.echo(
            _("a next year the calendar does not know is warned about from {day}").format(
                day=st.warn_from.isoformat()
            )
        )
        for w in st.warnings:
            click.echo(_("WARNING: {message}").format(message=w.message))
        line = _("provisional  {due}  {kind} {ref}  case {case}  ({note})")
        for i in st.provisional:
            click.echo(
                line.format(
                    due=i.due.isoformat(),
                    kind=i.kind,
                    ref=i.ref,
                    case=i.case_id,
                    note=provisional.note(i.missing_years),
                )
            )
        click.echo(_("{n} provisional deadline(s)").format(n=len(st.provisional)))
    if st.warnings:
        raise SystemExit(1)


@calendar_group.command("show")
@click.argument("year", type=int, required=False)
def calendar_show(year: int | None) -> None:
    """Print the overrides in force, or the non-working weekdays and working weekend days of YEAR."""
    from datetime import date, timedelta

    from sqlmodel import Session

    from archive.workdays import CalendarGap
    from archive.workdays.services import calendar_warnings, current_calendar, latest_version

    with Session(_engine()) as session:
        cal = current_calendar(session)
        row = latest_version(session)
        warnings = calendar_warnings(session, timezone=get_settings().timezone)
    if year is None:
        click.echo(json.dumps(cal.overrides.to_json(), indent=1, ensure_ascii=False))
        click.echo(_("in force: {label}").format(label=cal.label if row is None else f"db v{row.version}"))
        for w in warnings:  # on stderr: stdout stays the document, to edit and set again
            click.echo(_("WARNING: {message}").format(message=w.message), err=True)
        return
    d = date(year, 1, 1)
    try:
        while d.year == year:
            working = cal.is_working_day(d)
            if working != (d.weekday() < 5):
                kind = _("working day") if working else _("rest day")
                click.echo(f"{d.isoformat()}  {kind}")
            d += timedelta(days=1)
    except CalendarGap as exc:
        raise click.ClickException(str(exc)) from exc


@calendar_group.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why (e.g. the State Council's notice for the year).")
@click.option("--as", "as_name", required=True, help="The account the change is made as.")
def calendar_set(file: Path, reason: str, as_name: str) -> None:
    """Install FILE (the whole override document) as the next calendar version; the provisional
    deadlines of the years it knows are recomputed from their start (each change logged)."""
    from archive.db import session_scope
    from archive.errors import CustodyError
    from archive.workdays.services import install

    try:
        with session_scope(_engine()) as session:
            done = install(
                session, _account(session, as_name), json.loads(file.read_text(encoding="utf-8")), reason
            )
            version = done.row.version
    except (CustodyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_("working-day calendar version {v} in force").format(v=version))
    click.echo(
        _(
            "provisional deadlines recomputed: {legal} legal review(s), {publicity} publicity decision(s)"
        ).format(legal=done.recomputed.legal, publicity=done.recomputed.publicity)
    )
