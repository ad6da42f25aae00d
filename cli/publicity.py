"""`custody publicity due`, `custody report annual --year Y`, `custody roster import FILE.csv`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archive import vocabulary
from archive.config import get_settings
from archive.i18n import _
from cli.i18n import Group


def _engine() -> Any:
    from archive.db import make_engine
    from migrations import migrate

    s = get_settings()
    migrate(s)
    return make_engine(s.resolved_database_url())


def _user(session: Any, name: str) -> Any:
    from sqlmodel import select

    from archive.accounts.models import User

    user = session.exec(select(User).where(User.name == name, User.disabled == False)).first()  # noqa: E712
    if user is None:
        raise click.ClickException(_("no active account {name}").format(name=name))
    return user


@click.group(name="publicity", cls=Group)
def publicity_group() -> None:
    """Enforcement publicity (行政执法公示)."""


@publicity_group.command("due")
@click.option(
    "--soon", type=int, default=None, help="Working days ahead counted as due soon (default from settings)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def publicity_due(soon: int | None, as_json: bool) -> None:
    """Decisions past their publication deadline, and those due soon. Exit status 1 when any is overdue."""
    from sqlmodel import Session

    from archive.errors import CustodyError
    from archive.publicity import decisions

    engine = _engine()
    try:
        with Session(engine) as session:
            result = decisions.due_list(session, soon_days=soon)
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(result.model_dump_json(indent=1))
    else:
        click.echo(_("today {date} (agency's calendar)").format(date=result.today))
        line = _("{title}  {deadline}  {days} working days  {category}  case {case}  decided {decided}  {id}")
        for title, items in ((_("OVERDUE"), result.overdue), (_("due soon"), result.due_soon)):
            for i in items:
                click.echo(
                    line.format(
                        title=title,
                        deadline=f"{i.deadline} ({i.deadline_note})"
                        if i.deadline_provisional
                        else i.deadline,
                        days=f"{i.working_days_left:+d}",
                        category=vocabulary.label("publicity_category", i.category),
                        case=i.case_number,
                        decided=i.decided_on,
                        id=i.id,
                    )
                )
        click.echo(
            _("{overdue} overdue, {soon} due soon").format(
                overdue=len(result.overdue), soon=len(result.due_soon)
            )
        )
    if result.overdue:
        raise SystemExit(1)


@click.group(name="report", cls=Group)
def report_group() -> None:
    """Reports the archive publishes."""


@report_group.command("annual")
@click.option("--year", type=int, required=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for report-YEAR.json (signed) and report-YEAR.html (default: the current folder).",
)
def report_annual(year: int, out: Path | None) -> None:
    """Draft the yearly enforcement report (a new signed version) and write it as JSON and a page."""

    from archive.db import session_scope
    from archive.errors import CustodyError
    from archive.publicity import report
    from archive.signing import Keyring

    engine = _engine()
    keyring = Keyring.from_settings(get_settings())  # key files, or a PKCS#11 token
    try:
        with session_scope(engine) as session:
            row = report.draft(session, None, year, keyring)
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc
    folder = out or Path()
    folder.mkdir(parents=True, exist_ok=True)
    signed = {"body": row.body, "signature": report.signature_of(row)}
    (folder / f"report-{year}.json").write_text(
        json.dumps(signed, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    page = report.page_html(row.body, row.key_id, row.signature)
    (folder / f"report-{year}.html").write_text(page, encoding="utf-8")
    t = row.body["totals"]
    click.echo(
        _(
            "report {year} version {version} drafted and signed (key {key}): {decisions} decisions, "
            "{published} published, {withdrawn} withdrawn"
        ).format(
            year=year,
            version=row.version,
            key=row.key_id,
            decisions=t["decisions"],
            published=t["published"],
            withdrawn=t["withdrawn"],
        )
    )
    click.echo(
        _("wrote {json} and {html}").format(
            json=folder / f"report-{year}.json", html=folder / f"report-{year}.html"
        )
    )


@click.group(name="roster", cls=Group)
def roster_group() -> None:
    """The enforcement staff roster."""


@roster_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--as",
    "as_user",
    default=None,
    help="The admin account the import is logged under (default: the operator, as system:cli).",
)
def roster_import(file: Path, as_user: str | None) -> None:
    """Import FILE.csv (columns officer,name,unit,post,badge_no,certificate_no,category,area,valid_from,
    valid_to). A bad row refuses the whole file, naming row and field; nothing is imported."""
    from archive.db import session_scope
    from archive.errors import CustodyError
    from archive.publicity import roster

    engine = _engine()
    try:
        with session_scope(engine) as session:
            who = _user(session, as_user) if as_user else "system:cli"
            result = roster.import_csv(session, who, file.read_bytes(), addr="cli")
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        _("roster imported: {added} added, {updated} updated, {unchanged} unchanged").format(
            added=result.added, updated=result.updated, unchanged=result.unchanged
        )
    )
