"""`custody records ...` (sign text records with your own key) and `custody oversight`."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import click
import httpx

from archive.i18n import _
from cli.i18n import Command, Group

DEFAULT_SERVER = "http://127.0.0.1:8000"


def _token(token: str | None) -> str:
    t = token or os.environ.get("CUSTODY_TOKEN")
    if not t:
        raise click.UsageError(_("no token: pass --token or set CUSTODY_TOKEN"))
    return t


def _client(server: str, token: str | None) -> httpx.Client:
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {_token(token)}"}, timeout=30)


def _check(r: httpx.Response) -> None:
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise click.ClickException(f"{r.status_code}: {detail}")


@click.group(cls=Group)
def records() -> None:
    """Text records: sign a version with your own key."""


_server = click.option("--server", default=DEFAULT_SERVER, show_default=True)
_tok = click.option("--token", default=None, help="Bearer token (default: $CUSTODY_TOKEN).")
_key = click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Your Ed25519 private key (PEM); it never leaves this machine.",
)


@records.command("keygen")
@_server
@_tok
@_key
def keygen(server: str, token: str | None, key_file: Path) -> None:
    """Make a new Ed25519 key in KEY (0600) and register its public half with the archive."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archive.signing import public_key_pem

    if key_file.exists():
        raise click.ClickException(_("{path} exists; not overwriting a key").format(path=key_file))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    with _client(server, token) as c:
        r = c.post("/api/v1/me/signing-keys", json={"public_key_pem": public_key_pem(key.public_key())})
        _check(r)
    click.echo(_("registered key {key_id}").format(key_id=r.json()["key_id"]))


@records.command("sign")
@_server
@_tok
@_key
@click.argument("case_id")
@click.argument("record_id")
@click.option("--version", "version", type=int, default=None, help="Default: the latest version.")
def sign(
    server: str, token: str | None, key_file: Path, case_id: str, record_id: str, version: int | None
) -> None:
    """Sign one version of a record locally and send the signature; the server verifies it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archive.signatures.document import document_digest, record_document
    from archive.signing import canonical_json, key_id_for

    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise click.ClickException(_("{path} is not an Ed25519 private key").format(path=key_file))
    with _client(server, token) as c:
        r = c.get(f"/api/v1/cases/{case_id}/records/{record_id}")
        _check(r)
        versions = {int(v["version"]): v for v in r.json()}
        chosen = versions.get(version if version is not None else max(versions))
        if chosen is None:
            raise click.ClickException(_("record {rid} has no version {v}").format(rid=record_id, v=version))
        doc = record_document(chosen)
        signature = base64.b64encode(key.sign(canonical_json(doc))).decode("ascii")
        r = c.post(
            f"/api/v1/cases/{case_id}/records/{record_id}/versions/{chosen['version']}/signatures",
            json={"key_id": key_id_for(key.public_key()), "signature": signature},
        )
        _check(r)
    click.echo(
        _("signed record {rid} version {v} (document sha256 {digest})").format(
            rid=record_id, v=chosen["version"], digest=document_digest(doc)
        )
    )


@click.command("oversight", cls=Command)
@click.option("--run/--no-run", "run_first", default=True, show_default=True, help="Run the check first.")
@click.option("--kind", default=None, help="Only warnings of this kind.")
@click.option("--limit", default=50, show_default=True, help="Warnings to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
def oversight(run_first: bool, kind: str | None, limit: int, as_json: bool) -> None:
    """Early warnings (records missing required recordings, gaps, officers without a valid certificate,
    recordings never linked) and statistics per unit and officer, read from the database."""
    import json

    from archive.config import get_settings
    from archive.db import make_engine, session_scope
    from archive.errors import CustodyError
    from archive.oversight import check
    from archive.oversight import services as svc
    from archive.oversight.models import LABELS_EN, WarningKind
    from archive.workdays import provisional
    from migrations import migrate

    s = get_settings()
    migrate(s)
    engine = make_engine(s.resolved_database_url())
    try:
        if run_first:
            with session_scope(engine) as session:
                run = check.run_check(
                    session, unlinked_days=s.unlinked_warning_days, timezone=s.timezone, actor="user:cli"
                )
            click.echo(_("oversight run {id}: {counts}").format(id=run.id, counts=run.counts), err=True)
        with session_scope(engine) as session:
            result = svc.latest(session, svc.WarningQuery(WarningKind(kind) if kind else None, limit=limit))
    except (CustodyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    click.echo(_("warnings (run {id}, item list v{v}):").format(id=result.run_id, v=result.item_list_version))
    for k, n in sorted(result.counts.items()):
        click.echo(f"  {_(LABELS_EN[WarningKind(k)]) if k in set(WarningKind) else k}: {n}")
    line = _("  [{kind}] {subject} {id} case {case} officer {officer}")
    for w in result.items:
        click.echo(
            line.format(
                kind=_(LABELS_EN[w.kind]),
                subject=w.subject_type,
                id=w.subject_id,
                case=w.case_id or "-",
                officer=w.officer,
            )
        )
        if w.kind is WarningKind.CALENDAR_YEAR:  # what to do about it, with the command
            click.echo("    " + provisional.year_message(int(w.details["year"])))
        elif w.kind is WarningKind.PROVISIONAL_DEADLINE:
            click.echo(
                "    "
                + _("due {due} ({note})").format(
                    due=w.details.get("due"), note=provisional.note(w.details.get("missing_years", []))
                )
            )
    click.echo(_("statistics per unit and officer:"))
    stat = _(
        "  {unit} {officer}: records {records}, required {required}, covered {covered}, gaps {gaps}, "
        "missing {missing}, with reason {reason}, coverage {rate}, recordings {recordings}"
    )
    for st in result.stats:
        rate = "-" if st.coverage_rate is None else f"{st.coverage_rate:.0%}"
        click.echo(
            stat.format(
                unit=st.agency or "-",
                officer=st.officer or "-",
                records=st.records,
                required=st.required,
                covered=st.covered,
                gaps=st.gaps,
                missing=st.missing,
                reason=st.missing_with_reason,
                rate=rate,
                recordings=st.recordings,
            )
        )
