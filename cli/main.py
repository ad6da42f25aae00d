"""`custody`: the one command line of the archive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from archive import i18n, vocabulary
from archive.accounts.models import Role
from archive.config import InsecureSettings, get_settings
from archive.i18n import _, ngettext
from cli import i18n as cli_i18n

if TYPE_CHECKING:
    from archive.context import Context

DEFAULT_SERVER = "http://127.0.0.1:8000"
cli_i18n.install()


class _Main(cli_i18n.Group):
    """The root: its commands and groups show their help in the chosen language (cli/i18n.py)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The language first: --lang, else the locale; --help may be processed before --lang is.
        # (Subgroups are of this class too: only the root chooses.)
        if ctx.parent is None:
            i18n.set_language(cli_i18n.early_language(args) or i18n.from_environment())
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InsecureSettings, ValidationError) as exc:  # a refusal, not a crash: no traceback
            raise click.ClickException(str(exc)) from exc


def _choose_language(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--lang, else the locale (LANGUAGE / LC_ALL / LC_MESSAGES / LANG), else the agency's default."""
    try:
        chosen = i18n.validate(value) if value else i18n.from_environment()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    i18n.set_language(chosen)
    return chosen


@click.group(cls=_Main)
@click.option(
    "--lang",
    default=None,
    metavar="LANG",
    is_eager=True,
    expose_value=False,
    callback=_choose_language,
    help="Language of messages: zh-CN or en (default: from LANG / LC_ALL, else the agency's).",
)
def main() -> None:
    """Custody: evidence and audio-video record archive."""
    # Everything this process and its children (API, workers, beat) create - database, keys,
    # schedules, logs, exports - is readable by this account only.
    os.umask(0o077)


def _context() -> Context:
    """The command's collaborators (one context per command; the CLI sends no tasks)."""
    from archive.context import Context

    return Context.build(get_settings())


def _prepare() -> None:
    """Schema to head, buckets present, signing key present: safe to run every start."""
    from migrations import migrate

    s = get_settings()
    s.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    migrate(s)
    ctx = _context()
    ctx.store.ensure_buckets()
    ctx.keyring.current_key_id()
    ctx.close()


@main.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    from migrations import migrate as do_migrate

    do_migrate(get_settings())
    click.echo(_("database schema is up to date"))


@main.group()
def users() -> None:
    """Accounts and tokens."""


_ROLES = click.Choice([r.value for r in Role])


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=_ROLES,
)
def users_add(name: str, role: str) -> None:
    """Create a user; prints the bearer token alone on the last line (it is not stored, keep it)."""
    from archive.accounts import services as accounts
    from archive.accounts.models import Role
    from archive.db import session_scope
    from archive.errors import CustodyError
    from migrations import migrate

    migrate(get_settings())
    try:
        with session_scope(_context().engine) as session:
            _user, token = accounts.add_user(session, name, Role(role))
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        _("created {role} {name}; bearer token:").format(role=vocabulary.label("role", role), name=name)
    )
    click.echo(token)


def _users_change(fn: Any, name: str, as_name: str | None, **kwargs: Any) -> Any:
    """Run one lifecycle change in its own unit of work, as the operator (``system:cli``) or as the
    administrator named by --as; refusals become a message and exit 1."""
    from sqlmodel import select

    from archive.accounts.models import User
    from archive.db import session_scope
    from archive.errors import CustodyError
    from migrations import migrate

    migrate(get_settings())
    try:
        with session_scope(_context().engine) as session:
            by = None
            if as_name:
                by = session.exec(select(User).where(User.name == as_name)).first()
                if by is None or by.disabled:
                    raise click.ClickException(_("no enabled user named {name!r}").format(name=as_name))
            return fn(session, name, by=by, **kwargs)
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc


_AS = click.option(
    "--as", "as_name", default=None, help="The administrator making the change (default: the operator)."
)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (times in UTC, ISO 8601).")
def users_list(as_json: bool) -> None:
    """Every user: name, role, state, token expiry and last use (in the agency's time)."""
    import json

    from archive import localtime
    from archive.accounts import services as accounts
    from archive.db import session_scope
    from migrations import migrate

    migrate(get_settings())
    with session_scope(_context().engine) as session:
        rows = accounts.list_users(session)

    def iso(t: Any) -> str | None:
        return t.isoformat() if t else None

    if as_json:
        items = [
            {
                "name": r.name,
                "role": r.role.value,
                "state": "disabled" if r.disabled else ("expired" if r.token_expired else "enabled"),
                "token_issued_at": iso(r.token_issued_at),
                "token_expires_at": iso(r.token_expires_at),
                "last_seen_at": iso(r.last_seen_at),
                "open_sessions": r.open_sessions,
            }
            for r in rows
        ]
        click.echo(json.dumps({"users": items}, ensure_ascii=False, indent=2))
        return
    never, unseen = _("never"), _("not yet")
    for r in rows:
        if r.disabled:
            state = _("disabled")
        elif r.token_expired:
            state = _("token expired")
        else:
            state = _("enabled")
        expires = localtime.format_local(r.token_expires_at) if r.token_expires_at else never
        seen = localtime.format_local(r.last_seen_at) if r.last_seen_at else unseen
        click.echo(
            _(
                "{name}  {role}  {state}  token expires {expires}  last seen {seen}  sessions {sessions}"
            ).format(
                name=r.name,
                role=vocabulary.label("role", r.role),
                state=state,
                expires=expires,
                seen=seen,
                sessions=r.open_sessions,
            )
        )
    click.echo(ngettext("{n} user", "{n} users", len(rows)).format(n=len(rows)))


@users.command("disable")
@click.argument("name")
@click.option("--reason", required=True, help="Why (kept in the custody log).")
@_AS
def users_disable(name: str, reason: str, as_name: str | None) -> None:
    """Disable a user: every token and page session of theirs fails from the next request on."""
    from archive.accounts import services as accounts

    _users_change(accounts.disable_user, name, as_name, reason=reason)
    click.echo(_("disabled {name}: their token and sessions no longer work").format(name=name))


@users.command("enable")
@click.argument("name")
@click.option("--reason", default="", help="Why (kept in the custody log).")
@_AS
def users_enable(name: str, reason: str, as_name: str | None) -> None:
    """Enable a disabled user again (their current token works again if it has not expired)."""
    from archive.accounts import services as accounts

    _users_change(accounts.enable_user, name, as_name, reason=reason)
    click.echo(_("enabled {name}").format(name=name))


@users.command("rotate")
@click.argument("name")
@click.option("--reason", default="", help="Why (kept in the custody log).")
@_AS
def users_rotate(name: str, reason: str, as_name: str | None) -> None:
    """Issue a new token (printed alone on the last line, once); the old one and the user's page
    sessions stop working at once."""
    from archive import localtime
    from archive.accounts import services as accounts

    user, token = _users_change(accounts.rotate_token, name, as_name, reason=reason)
    expires = accounts.token_expires_at(user)
    click.echo(
        _("new token for {name}, expires {expires}; the old token no longer works:").format(
            name=name, expires=localtime.format_local(expires) if expires else _("never")
        )
    )
    click.echo(token)


@users.command("role")
@click.argument("name")
@click.argument("role", type=_ROLES)
@click.option("--reason", required=True, help="Why (kept in the custody log).")
@_AS
def users_role(name: str, role: str, reason: str, as_name: str | None) -> None:
    """Change a user's role (takes effect on their next request)."""
    from archive.accounts import services as accounts
    from archive.accounts.models import Role

    _users_change(accounts.set_role, name, as_name, role=Role(role), reason=reason)
    click.echo(_("{name} is now {role}").format(name=name, role=vocabulary.label("role", role)))


@main.command()
def checkpoint() -> None:
    """Sequence new custody events into the log, sign a checkpoint now and publish it to S3."""
    from archive.db import session_scope
    from archive.ledger import services as ledger
    from archive.ledger.publish import publish
    from migrations import migrate

    migrate(get_settings())
    ctx = _context()
    with session_scope(ctx.engine) as session:
        cp = ledger.sign_checkpoint(session, ctx.keyring)
    click.echo(
        _("checkpoint {id}: tree size {size}, root {root}, key {key}").format(
            id=cp.id, size=cp.tree_size, root=cp.root_hash, key=cp.key_id
        )
    )
    with session_scope(ctx.engine) as session:
        published = publish(session, ctx.store)
    click.echo(_("published outside the database up to tree size {size}").format(size=published))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for machines).")
def verify(as_json: bool) -> None:
    """Re-hash every archived object, check every signature, recompute the custody log against its
    signed checkpoints. Names every discrepancy; exits 1 if there is any."""
    import json

    from archive.audit import services as audit
    from archive.db import session_scope
    from migrations import migrate

    migrate(get_settings())
    ctx = _context()
    report = audit.verify_all(ctx.engine, ctx.store, ctx.keyring)
    with session_scope(ctx.engine) as session:
        audit.record_report(session, report, actor="system:cli")
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for d in report.discrepancies:
            click.echo(str(d))
        click.echo(
            _(
                "checked {media} media items, {objects} objects ({bytes} bytes), {signatures} manifest "
                "signatures, {entries} log entries against {checkpoints} signed checkpoints ({unsequenced} "
                "events not yet in a checkpoint)"
            ).format(
                media=report.media_checked,
                objects=report.objects_hashed,
                bytes=report.bytes_hashed,
                signatures=report.signatures_checked,
                entries=report.log_entries_checked,
                checkpoints=report.checkpoints_checked,
                unsequenced=report.unsequenced_events,
            )
        )
        click.echo(
            _("OK: no discrepancies")
            if report.ok
            else _("FAILED: {count} discrepancies").format(count=len(report.discrepancies))
        )
    sys.exit(0 if report.ok else 1)


@main.command("export")
@click.argument("case")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--agency", default=None, help="The case's agency, when its number exists in several.")
@click.option(
    "--media",
    "media_ids",
    multiple=True,
    help="Export only these of the case's linked media (repeat); default: all of them.",
)
@click.option(
    "--with-addresses",
    is_flag=True,
    help="Include every actor's client address in the custody log file (default: none), for an "
    "export that stays with people entitled to read the whole log.",
)
def export_case(
    case: str, out: Path, agency: str | None, media_ids: tuple[str, ...], with_addresses: bool
) -> None:
    """Write an evidence export of CASE (case id or number): linked media, text records, custody
    events with inclusion proofs, keys and a standalone verifier, in one zip."""
    from archive.errors import CustodyError
    from archive.export import services as export
    from migrations import migrate

    migrate(get_settings())
    ctx = _context()
    try:
        res = export.build_export(
            ctx.engine,
            ctx.store,
            ctx.keyring,
            case,
            out,
            actor="system:cli",
            agency=agency,
            media_ids=list(media_ids) or None,
            with_addresses=with_addresses,
        )
    except CustodyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        _(
            "export {export} of case {case}: {media} media items, {records} record versions, {events} "
            "custody events proven against checkpoint {checkpoint}, {bytes} bytes -> {path}"
        ).format(
            export=res.export_id,
            case=res.case_id,
            media=len(res.media_ids),
            records=res.records,
            events=res.events,
            checkpoint=res.checkpoint_id,
            bytes=res.bytes_written,
            path=res.path,
        )
    )
    click.echo(
        _("check it offline: unzip it and run  python3 verify_export.py {name}").format(name=res.path.name)
    )


@main.group()
def keys() -> None:
    """Signing keys (Ed25519) and storage encryption keys (SSE-C)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new current signing key; old keys stay so old signatures still verify."""
    from archive import events
    from archive.db import session_scope
    from migrations import migrate

    migrate(get_settings())
    ctx = _context()
    old = ctx.keyring.current_key_id()
    new = ctx.keyring.rotate()
    with session_scope(ctx.engine) as session:
        events.record(
            session,
            actor="system:cli",
            action="keys.rotate",
            subject_type="key",
            subject_id=new,
            details={"previous": old},
        )
    click.echo(
        _("signing key rotated: {old} -> {new} (the old key still verifies old signatures)").format(
            old=old, new=new
        )
    )


@keys.command("rotate-storage")
def keys_rotate_storage() -> None:
    """Make a new current storage (SSE-C) master key; objects written before stay readable with
    the old key, which is kept."""
    from archive import events, storage_keys
    from archive.db import session_scope
    from migrations import migrate

    s = get_settings()
    migrate(s)
    try:
        old, new = storage_keys.rotate(s)
    except storage_keys.StorageKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx = _context()
    with session_scope(ctx.engine) as session:
        events.record(
            session,
            actor="system:cli",
            action="keys.rotate_storage",
            subject_type="key",
            subject_id=new,
            details={"previous": old},
        )
    click.echo(
        _(
            "storage key rotated: {old} -> {new}; new objects use the new key, old objects keep "
            "theirs (keep every old key file as long as objects made under it are retained)"
        ).format(old=old, new=new)
    )


@main.command()
@click.option("--api-only", is_flag=True, help="Run only the HTTP API.")
@click.option(
    "--worker-only", is_flag=True, help="Run only the Celery workers (ingest and transcode queues)."
)
@click.option("--beat-only", is_flag=True, help="Run only the Celery beat scheduler.")
@click.option("--host", default=None, help="API address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="API port (default 8000).")
def serve(api_only: bool, worker_only: bool, beat_only: bool, host: str | None, port: int | None) -> None:
    """Run the API, the workers and the scheduler (all by default), until interrupted."""
    if sum([api_only, worker_only, beat_only]) > 1:
        raise click.UsageError(_("choose at most one of --api-only, --worker-only, --beat-only"))
    everything = not (api_only or worker_only or beat_only)
    s = get_settings()
    _prepare()
    py = sys.executable
    celery = [py, "-m", "celery", "-A", "workers.celery_app", "--quiet"]
    procs: list[tuple[str, list[str]]] = []
    if everything or api_only:
        procs.append(
            (
                "api",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "api.app:app",
                    "--host",
                    host or s.api_host,
                    "--port",
                    str(port or s.api_port),
                    "--no-access-log",
                ],
            )
        )
    if everything or worker_only:
        procs.append(
            (
                "ingest",
                [
                    *celery,
                    "worker",
                    "-Q",
                    "ingest,publicity",
                    "--pool",
                    s.ingest_worker_pool,
                    "-c",
                    str(s.ingest_worker_concurrency),
                    "-n",
                    "ingest@%h",
                    "--loglevel",
                    "INFO",
                ],
            )
        )
        # Transcodes are CPU-bound and long: their own queue, one at a time.
        procs.append(
            (
                "transcode",
                [*celery, "worker", "-Q", "transcode", "-c", "1", "-n", "transcode@%h", "--loglevel", "INFO"],
            )
        )
    if everything or beat_only:
        procs.append(
            ("beat", [*celery, "beat", "-s", str(s.data_dir / "celerybeat-schedule"), "--loglevel", "INFO"])
        )
    # Metrics of all these processes are added up by /metrics (prometheus-client multiprocess mode):
    # one folder for this host's processes (API and workers started one by one share it too, so
    # only a start of everything empties it: values of processes still running would be lost).
    mdir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str((s.data_dir / "metrics").resolve())))
    mdir.mkdir(parents=True, exist_ok=True)
    if everything:
        for stale in mdir.glob("*.db"):
            stale.unlink()
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    for name, cmd in procs:
        running.append((name, subprocess.Popen(cmd)))
        click.echo(_("started {name} (pid {pid})").format(name=name, pid=running[-1][1].pid), err=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rc = 0
    try:
        while not stopping:
            for name, p in running:
                if p.poll() is not None:
                    click.echo(
                        _("{name} exited with {code}; stopping the rest").format(
                            name=name, code=p.returncode
                        ),
                        err=True,
                    )
                    rc = p.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        for _name, p in running:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _name, p in running:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(rc)


def _token(token: str | None) -> str:
    t = token or os.environ.get("CUSTODY_TOKEN")
    if not t:
        raise click.UsageError(_("no token: pass --token or set CUSTODY_TOKEN"))
    return t


@main.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--officer", required=True, help="Badge number of the officer whose recorder this is.")
@click.option("--device", required=True, help="Serial number of the recorder.")
@click.option("--server", default=DEFAULT_SERVER, show_default=True)
@click.option("--token", default=None, help="Bearer token (default: $CUSTODY_TOKEN).")
@click.option(
    "--clock-offset",
    type=float,
    default=None,
    help="Recorder clock minus true time, in seconds, as stated by the officer.",
)
@click.option(
    "--device-clock",
    default=None,
    metavar="ISO8601",
    help="The time the recorder shows now (e.g. 2024-06-10T14:03:05, station local time if no offset); "
    "the dock measures the recorder's clock offset from it and records it as measured.",
)
@click.option(
    "--clear", is_flag=True, help="Delete each file from the recorder once the server verified its hash."
)
@click.option(
    "--state-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Where resume state is kept (default: ~/.local/state/custody/).",
)
@click.option(
    "--verify-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to wait for the server to verify each file.",
)
@click.option(
    "--via-api",
    is_flag=True,
    help="Send the bytes through the API (tus) instead of straight to storage on presigned URLs.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Parts PUT to storage at once.",
)
@click.option(
    "--retry-for",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to keep retrying while the API or storage is unreachable (a restart) before giving up.",
)
def dock(
    path: Path,
    officer: str,
    device: str,
    server: str,
    token: str | None,
    clock_offset: float | None,
    device_clock: str | None,
    clear: bool,
    state_file: Path | None,
    verify_timeout: float,
    via_api: bool,
    parallel: int,
    retry_for: float,
) -> None:
    """Archive every file of a recorder's folder. Exit 0 only if every file is verified safe."""
    import httpx

    from cli.dock import (
        Docker,
        DockError,
        FileResult,
        Pending,
        ResumeState,
        default_state_file,
        measure_clock_offset,
        print_progress,
        walk,
    )

    clock_source = None
    if device_clock is not None:
        if clock_offset is not None:
            raise click.UsageError(_("give --device-clock or --clock-offset, not both"))
        from datetime import UTC, datetime

        try:
            clock_offset = measure_clock_offset(device_clock, datetime.now(UTC))
        except DockError as exc:
            raise click.UsageError(str(exc)) from exc
        clock_source = "measured"
        click.echo(
            _("recorder clock offset {offset} s (measured from --device-clock)").format(
                offset=f"{clock_offset:+.3f}"
            ),
            err=True,
        )
    state = ResumeState.load(state_file or default_state_file(path, server))
    d = Docker(
        server,
        _token(token),
        officer,
        device,
        clock_offset_s=clock_offset,
        clock_source=clock_source,
        state=state,
        verify_timeout_s=verify_timeout,
        progress=print_progress,
        direct=not via_api,
        parallel=parallel,
        retry_for_s=retry_for,
    )
    results = []
    try:
        try:
            who = d.check_token()
        except (DockError, httpx.HTTPError) as exc:
            click.echo(_("cannot dock: {error}").format(error=exc), err=True)
            sys.exit(2)
        click.echo(
            _("docking {path} as {role} {name} to {server}").format(
                path=path, role=vocabulary.label("role", who["role"]), name=who["name"], server=server
            ),
            err=True,
        )
        pending: list[tuple[Path, Pending]] = []

        def report(p: Path, r: FileResult) -> None:
            results.append(r)
            label = _("SAFE") if r.ok else _("FAIL")
            click.echo(f"{label}  {r.rel}  {r.sha256 or '-'}  {r.media_id or '-'}  {r.message}")
            if r.ok and clear:
                p.unlink()
                click.echo("      " + _("cleared {file} from the recorder").format(file=r.rel))

        def confirm_ready(block: bool) -> None:
            # Confirm in docking order; a file is cleared only after its own confirmation.
            while pending and (block or len(pending) > 1):
                p0, item = pending.pop(0)
                try:
                    report(p0, d.confirm(item))
                except (DockError, httpx.HTTPError) as exc:
                    report(p0, FileResult(item.rel, False, str(exc)))

        for p, rel in walk(path):
            try:
                sent = d.send_file(p, rel)
            except (DockError, httpx.HTTPError, OSError) as exc:
                sent = FileResult(rel, False, str(exc))
            if isinstance(sent, Pending):
                pending.append((p, sent))
                # The server verifies this file while the next one uploads.
                confirm_ready(block=False)
            else:
                report(p, sent)
        confirm_ready(block=True)
    finally:
        d.close()
    bad = [r for r in results if not r.ok]
    summary = _("{safe} of {total} files safe").format(safe=len(results) - len(bad), total=len(results))
    if bad:
        summary += _("; {bad} NOT safe").format(bad=len(bad))
    click.echo(summary)
    click.echo(_("sent {n} bytes").format(n=d.sent_bytes), err=True)
    if bad:
        sys.exit(1)


def _collaborators() -> tuple[Any, Any, Any]:
    ctx = _context()
    return ctx.engine, ctx.store, ctx.keyring


@main.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted, and why; delete nothing.")
@click.option("--batch", type=int, default=None, help="Rows per transaction (default from settings).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def sweep(dry_run: bool, batch: int | None, as_json: bool) -> None:
    """Delete expired, unprotected recordings (retention), leaving signed tombstones."""
    import json as jsonlib

    from archive.access import actor
    from retention import services as rs

    engine, store, keyring = _collaborators()
    rs.classify_pending(engine, store)
    rs.refresh_changed(engine, store)
    result = rs.sweep(
        engine,
        store,
        keyring,
        dry_run=dry_run,
        batch=batch or get_settings().retention_sweep_batch,
        actor=actor("cli-sweep"),
    )
    if as_json:
        click.echo(
            jsonlib.dumps({"dry_run": dry_run, "deleted": result.deleted, "kept": result.kept}, indent=1)
        )
        return
    from archive.localtime import format_local

    verb = _("would delete") if dry_run else _("deleted")
    line, kept = _("{verb}  {media}  rule {rule}  {detail}"), _("kept  {media}  {why}")
    for e in result.deleted:
        due = e.get("delete_after")
        detail = format_local(datetime.fromisoformat(due)) if due else e.get("sha256", "")
        click.echo(line.format(verb=verb, media=e["media_id"], rule=e["rule"], detail=detail))
    for e in result.kept:
        click.echo(kept.format(media=e["media_id"], why=e.get("why") or _("not due")))
    click.echo(
        _("{deleted} {verb}, {kept} kept on re-check").format(
            deleted=len(result.deleted), verb=verb, kept=len(result.kept)
        )
    )


@main.group(name="retention")
def retention_group() -> None:
    """Retention policy and the deletion report."""


@retention_group.command("report")
@click.option("--days", type=int, default=30, show_default=True)
def retention_report(days: int) -> None:
    """What becomes deletable within DAYS."""
    from sqlmodel import Session

    from archive.clock import utcnow
    from archive.localtime import format_local
    from retention import services as rs

    engine = _collaborators()[0]
    with Session(engine) as session:
        rows = rs.upcoming(session, utcnow(), days)
    for r in rows:
        when = format_local(r.delete_after) if r.delete_after else "-"
        click.echo("  ".join([when, r.media_id, _("rule {rule}").format(rule=r.rule_id)]))
    click.echo(
        ngettext(
            "{count} item becomes deletable within {days} days",
            "{count} items become deletable within {days} days",
            len(rows),
        ).format(count=len(rows), days=days)
    )


@retention_group.command("policy")
@click.option(
    "--set",
    "new_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ask for this JSON file to become the next policy version (a second person approves).",
)
@click.option("--reason", default="", help="Why the policy changes (required with --set).")
@click.option("--by", default=None, metavar="NAME", help="The records manager asking (required with --set).")
def retention_policy(new_file: Path | None, reason: str, by: str | None) -> None:
    """Print the policy in force, or ask for a new version with --set FILE --reason TEXT --by NAME.
    The request is checked against the legal minimums at once; another records manager or an
    administrator approves it (`custody approvals approve ID --by NAME`), which installs it."""
    import json as jsonlib

    from archive.accounts import services as accounts
    from archive.db import session_scope
    from archive.errors import CustodyError
    from retention import actions
    from retention import services as rs

    engine, _store, _keyring = _collaborators()
    if new_file is None:
        from sqlmodel import Session

        with Session(engine) as session:
            click.echo(jsonlib.dumps(rs.current_policy(session).to_json(), indent=1))
        return
    if not by:
        raise click.UsageError(_("--set needs --by NAME: the records manager asking"))
    try:
        with session_scope(engine) as session:
            user = accounts.active_user(session, by)
            if user is None:
                raise click.ClickException(_("no active account {name}").format(name=by))
            row = actions.set_policy(session, user, jsonlib.loads(new_file.read_text()), reason)
            request_id = row.id
    except (CustodyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        _("retention policy change asked: approval request {id} awaits a second person").format(id=request_id)
    )


from cli.duties import approvals_group, devices_group  # noqa: E402  (issue 10: devices, two-person approval)
from cli.legal import calendar_group, legal_group  # noqa: E402  (issue 12: legal review, calendar)
from cli.publicity import publicity_group, report_group, roster_group  # noqa: E402  (issue 14)
from cli.recording import oversight as oversight_command  # noqa: E402  (issue 13: whole-process recording)
from cli.recording import records as records_group  # noqa: E402

main.add_command(legal_group)
main.add_command(calendar_group)
main.add_command(publicity_group)
main.add_command(report_group)
main.add_command(roster_group)
main.add_command(records_group)
main.add_command(oversight_command)
main.add_command(devices_group)
main.add_command(approvals_group)

if __name__ == "__main__":
    main()
