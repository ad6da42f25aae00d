"""`custody devices ...` (the device registry) and `custody approvals ...` (two-person approval):
issue 10, findings 3 and 4. Each command acts as a named account (``--by``), which must hold the
role the same request through the API needs; everything is logged in that account's name."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from archive.i18n import _
from cli.i18n import Group

if TYPE_CHECKING:
    from sqlmodel import Session

    from archive.accounts.models import User

_by = click.option("--by", "by", required=True, metavar="NAME", help="The account acting (its role decides).")
_json = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _collaborators() -> tuple[Any, Any]:
    from archive.config import get_settings
    from archive.context import Context

    ctx = Context.build(get_settings())
    return ctx.engine, ctx.store


def _user(session: Session, name: str) -> User:
    from archive.accounts import services as accounts

    user = accounts.active_user(session, name)
    if user is None:
        raise click.ClickException(_("no active account {name}").format(name=name))
    return user


@contextmanager
def _unit(engine: Any) -> Iterator[Session]:
    from archive.db import session_scope
    from archive.errors import CustodyError

    try:
        with session_scope(engine) as session:
            yield session
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo(data: Any, as_json: bool, line: str) -> None:
    click.echo(jsonlib.dumps(data, indent=1, default=str, ensure_ascii=False) if as_json else line)


# --------------------------------------------------------------------------- devices


@click.group(name="devices", cls=Group)
def devices_group() -> None:
    """The device registry: which officers may dock which recorder."""


@devices_group.command("register")
@click.argument("serial")
@click.option("--officer", default=None, help="The one officer (badge) it is registered to.")
@click.option(
    "--pool", default=None, help="Or a pool: the badges of the officers who may dock it, comma-separated."
)
@click.option("--reason", required=True)
@_by
@_json
def devices_register(
    serial: str, officer: str | None, pool: str | None, reason: str, by: str, as_json: bool
) -> None:
    """Register SERIAL to an officer or a pool (administrators and records managers)."""
    from archive.accounts import devices

    engine, _store = _collaborators()
    members = pool.split(",") if pool is not None else None
    with _unit(engine) as session:
        device = devices.register(
            session, _user(session, by), serial, officer=officer, pool=members, reason=reason
        )
        out = devices.public(session, device)
    who = out.officer or ",".join(out.pool)
    _echo(
        out.model_dump(), as_json, _("device {serial} registered to {who}").format(serial=out.serial, who=who)
    )


@devices_group.command("retire")
@click.argument("serial")
@click.option("--reason", required=True)
@_by
def devices_retire(serial: str, reason: str, by: str) -> None:
    """Take SERIAL out of service: what it docks afterwards is flagged and linked to nothing."""
    from archive.accounts import devices

    engine, _store = _collaborators()
    with _unit(engine) as session:
        devices.retire(session, _user(session, by), serial, reason=reason)
    click.echo(_("device {serial} retired").format(serial=serial))


@devices_group.command("list")
@click.option("--status", type=click.Choice(["unregistered", "registered", "retired"]), default=None)
@click.option("--flagged", is_flag=True, help="List the recordings flagged for their device instead.")
@_by
@_json
def devices_list(status: str | None, flagged: bool, by: str, as_json: bool) -> None:
    """List devices (or flagged recordings): administrators, records managers, auditors."""
    from archive.accounts import devices
    from archive.accounts.models import DeviceStatus

    engine, _store = _collaborators()
    with _unit(engine) as session:
        user = _user(session, by)
        if flagged:
            rows: list[Any] = devices.flagged_media(session, user)
        else:
            rows = devices.list_devices(session, user, status=DeviceStatus(status) if status else None)
    if as_json:
        _echo([r.model_dump() for r in rows], True, "")
        return
    for r in rows:
        if flagged:
            click.echo(f"{r.media_id}  {r.device_serial}  {r.officer_badge}  {r.reason}")
        else:
            who = r.officer or ",".join(r.pool) or "-"
            click.echo(f"{r.serial}  {r.status}  {who}  {r.flagged_media}")


# --------------------------------------------------------------------------- approvals


@click.group(name="approvals", cls=Group)
def approvals_group() -> None:
    """Two-person approval: requests, approving, rejecting."""


def _handlers() -> None:
    import archive.cases.services  # noqa: F401  (registers the unlink kind)
    import retention.approvals  # noqa: F401  (registers retention's kinds)


@approvals_group.command("list")
@click.option(
    "--state", type=click.Choice(["pending", "approved", "rejected", "cancelled", "expired"]), default=None
)
@_by
@_json
def approvals_list(state: str | None, by: str, as_json: bool) -> None:
    """Your requests and those you may decide (auditors: all)."""
    from archive.approvals import services as approvals
    from archive.approvals.models import ApprovalState

    _handlers()
    engine, _store = _collaborators()
    with _unit(engine) as session:
        user = _user(session, by)
        rows = [
            approvals.public(r)
            for r in approvals.list_requests(session, user, state=ApprovalState(state) if state else None)
        ]
    if as_json:
        _echo([r.model_dump() for r in rows], True, "")
        return
    for r in rows:
        click.echo(f"{r.id}  {r.state}  {r.kind}  {r.subject_id}  {r.requested_by}  {r.reason}")


def _decide(request_id: int, by: str, reason: str, approve: bool, as_json: bool) -> None:
    from archive.approvals import services as approvals

    _handlers()
    engine, store = _collaborators()
    with _unit(engine) as session:
        row = approvals.decide(
            session,
            _user(session, by),
            request_id,
            approve=approve,
            reason=reason,
            deps=approvals.Deps(store=store, addr="cli"),
        )
        out = approvals.public(row)
    if approve and out.result and "version" in out.result:
        from retention import services as rs

        rs.reclassify_all(engine, store)  # the API sends this to a worker; the CLI does it here
    _echo(
        out.model_dump(),
        as_json,
        _("approval request {id}: {state}").format(id=out.id, state=out.state),
    )


@approvals_group.command("approve")
@click.argument("request_id", type=int)
@click.option("--reason", default="")
@_by
@_json
def approvals_approve(request_id: int, reason: str, by: str, as_json: bool) -> None:
    """Approve someone else's request; what it asks is carried out at once."""
    _decide(request_id, by, reason, True, as_json)


@approvals_group.command("reject")
@click.argument("request_id", type=int)
@click.option("--reason", required=True)
@_by
@_json
def approvals_reject(request_id: int, reason: str, by: str, as_json: bool) -> None:
    """Reject someone else's request, with a reason."""
    _decide(request_id, by, reason, False, as_json)
