"""Auditor endpoints: signed checkpoints, inclusion and consistency proofs, verification runs.

Read by auditors (and admins). Proof responses carry everything needed to check them offline with
the public keys from ``/api/v1/keys``: the leaf's JSON, its RFC 6962 inclusion path, the checkpoint.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from api.deps import ClientAddr, ContextDep, CurrentUser, KeyringDep, SessionDep, StoreDep
from api.openapi import binary, header
from archive.access import actor
from archive.audit import services as audit
from archive.copyout import services as copyout
from archive.export import services as export
from archive.ledger import services as ledger
from archive.ledger.models import CheckpointPublic

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class CheckpointList(BaseModel):
    tree_size: int  # entries sequenced now (may be ahead of the latest checkpoint)
    checkpoints: list[CheckpointPublic]


@router.get("/checkpoints", response_model=CheckpointList)
def checkpoints(
    session: SessionDep, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> CheckpointList:
    size, rows = ledger.checkpoints_for(session, user, limit)
    return CheckpointList(tree_size=size, checkpoints=rows)


@router.post("/checkpoints", response_model=CheckpointPublic, status_code=201)
def sign_checkpoint(session: SessionDep, user: CurrentUser, keyring: KeyringDep) -> CheckpointPublic:
    """Sequence everything committed and sign a checkpoint now (on demand, besides the schedule)."""
    return ledger.sign_checkpoint_for(session, user, keyring)


class InclusionOut(BaseModel):
    proof: dict[str, Any]
    checkpoint: CheckpointPublic


@router.get("/events/{event_id}/proof", response_model=InclusionOut)
def inclusion_proof(
    event_id: int, session: SessionDep, user: CurrentUser, tree_size: int | None = None
) -> InclusionOut:
    """The event's leaf and its inclusion path to a signed checkpoint (the latest by default)."""
    proof, cp = ledger.inclusion_for(session, user, event_id, tree_size)
    return InclusionOut(proof=proof.to_json(), checkpoint=cp)


class ConsistencyOut(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]


@router.get("/consistency", response_model=ConsistencyOut)
def consistency_proof(
    session: SessionDep,
    user: CurrentUser,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> ConsistencyOut:
    """RFC 6962 consistency proof that the tree of size ``second`` extends the one of size ``first``."""
    return ConsistencyOut.model_validate(asdict(ledger.consistency_for(session, user, first, second)))


@router.post("/verify")
async def run_verify(
    ctx: ContextDep, user: CurrentUser, addr: ClientAddr, store: StoreDep, keyring: KeyringDep
) -> dict[str, Any]:
    """Run the full verification now (can take long on a big archive) and record it in the log."""
    report = await run_in_threadpool(
        partial(audit.verify_for, ctx.engine, store, keyring, user, client_addr=addr)
    )
    return report.to_json()


@router.get("/verify")
def verification_results(
    session: SessionDep, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    """The latest verification and fixity-sweep results, as recorded in the custody log."""
    return {"results": audit.reports_for(session, user, limit)}


exports = APIRouter(prefix="/api/v1/exports", tags=["exports"])


class ExportIn(BaseModel):
    case: str  # the case id, or its number
    agency: str | None = None  # when the number exists in several agencies
    media: list[str] | None = None  # a subset of the case's linked media (default: all of them)
    copyout: int | None = None  # the approved copy-out request (调取审批) this export uses
    # Every actor's client address in the custody log file (needs the audit permission); by
    # default an export carries only the exporter's own (issue 10, finding 6).
    addresses: bool = False


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


@exports.post(
    "",
    response_class=FileResponse,
    responses=binary(
        "application/zip",
        description="The evidence package (check it with the `verify_export.py` inside)",
        headers={
            "Content-Disposition": header("`attachment; filename=custody-export-<id>.zip`", required=True)
        },
    ),
)
async def create_export(
    body: ExportIn, ctx: ContextDep, user: CurrentUser, addr: ClientAddr, store: StoreDep, keyring: KeyringDep
) -> FileResponse:
    """An evidence export of one case as a zip: its linked originals, proxies and posters, signed
    manifests, every version of its text records (JSON and HTML), the custody events of the case,
    its records and media with inclusion proofs, the public keys and ``verify_export.py``.
    Reviewers export only the cases assigned to them. The log carries the exporter's own client
    addresses only (others' as commitments), unless ``addresses`` is set by someone with the audit
    permission. Logged as ``export.create``, ``case.export``
    and ``media.export``."""
    copy_out = await run_in_threadpool(
        partial(
            copyout.approve_export,
            ctx.engine,
            user,
            body.case,
            body.agency,
            body.copyout,
            addr,
            with_addresses=body.addresses,
        )
    )
    out = Path(tempfile.mkdtemp(prefix="custody-export-")) / "export.zip"
    try:
        res = await run_in_threadpool(
            partial(
                export.build_export,
                ctx.engine,
                store,
                keyring,
                body.case,
                out,
                actor=actor(user),
                user=user,
                agency=body.agency,
                media_ids=body.media,
                client_addr=addr,
                copy_out=copy_out,
                with_addresses=body.addresses,
            )
        )
    except BaseException:
        _remove(out)
        raise
    return FileResponse(
        res.path,
        media_type="application/zip",
        filename=f"custody-export-{res.export_id}.zip",
        background=BackgroundTask(_remove, res.path),
    )
