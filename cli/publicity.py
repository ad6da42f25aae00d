"""`custody publicity due`, `custody report annual --year Y`, `custody roster import FILE.csv`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archive.config import get_settings
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
        raise click.ClickException(f"no active account {name!r}")
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
        click.echo(f"today {result.today}")
        for title, items in (("OVERDUE", result.overdue), ("due soon", result.due_soon)):
            for i in items:
                click.echo(
                    f"{title:8}  {i.deadline}  {i.working_days_left:+d} wd  {i.category_label}  "
                    f"case {i.case_number}  decided {i.decided_on}  {i.id}"
                )
        click.echo(f"{len(result.overdue)} overdue, {len(result.due_soon)} due soon")
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
        f"report {year} version {row.version} drafted and signed (key {row.key_id}): "
        f"{t['decisions']} decisions, {t['published']} published, {t['withdrawn']} withdrawn"
    )
    click.echo(f"wrote {folder / f'report-{year}.json'} and {folder / f'report-{year}.html'}")


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
        f"roster imported: {result.added} added, {result.updated} updated, {result.unchanged} unchanged"
    )
