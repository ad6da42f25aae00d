"""Auditor endpoints: signed checkpoints, inclusion and consistency proofs, verification runs.

Read by auditors (and admins). Proof responses carry everything needed to check them offline with
the public keys from ``/api/v1/keys``: the leaf's JSON, its RFC 6962 inclusion path, the checkpoint.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlmodel import col, select
from starlette.background import BackgroundTask

from api.deps import ClientAddr, KeyringDep, SessionDep, StoreDep, require
from archive.audit import services as audit
from archive.errors import NotFound
from archive.export import services as export
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint, CheckpointPublic
from archive.models import Role, User

AUDITORS = (Role.AUDITOR, Role.ADMIN)
router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[User, require(*AUDITORS)]


class CheckpointList(BaseModel):
    tree_size: int  # entries sequenced now (may be ahead of the latest checkpoint)
    checkpoints: list[CheckpointPublic]


@router.get("/checkpoints", response_model=CheckpointList)
def checkpoints(
    session: SessionDep, user: Auditor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> CheckpointList:
    rows = session.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(limit))
    return CheckpointList(
        tree_size=ledger.tree_size(session),
        checkpoints=[CheckpointPublic.model_validate(r.model_dump()) for r in rows],
    )


@router.post("/checkpoints", response_model=CheckpointPublic, status_code=201)
def sign_checkpoint(session: SessionDep, user: Auditor, keyring: KeyringDep) -> CheckpointPublic:
    """Sequence everything committed and sign a checkpoint now (on demand, besides the schedule)."""
    cp = ledger.sign_checkpoint(session, keyring)
    return CheckpointPublic.model_validate(cp.model_dump())


def _checkpoint_for(session: SessionDep, tree_size: int | None) -> Checkpoint:
    q = select(Checkpoint).order_by(col(Checkpoint.id).desc())
    if tree_size is not None:
        q = q.where(Checkpoint.tree_size == tree_size)
    cp = session.exec(q.limit(1)).first()
    if cp is None:
        raise NotFound(
            "no signed checkpoint" + (f" of size {tree_size}" if tree_size is not None else " yet")
        )
    return cp


class InclusionOut(BaseModel):
    proof: dict[str, Any]
    checkpoint: CheckpointPublic


@router.get("/events/{event_id}/proof", response_model=InclusionOut)
def inclusion_proof(
    event_id: int, session: SessionDep, user: Auditor, tree_size: int | None = None
) -> InclusionOut:
    """The event's leaf and its inclusion path to a signed checkpoint (the latest by default)."""
    cp = _checkpoint_for(session, tree_size)
    proof = ledger.inclusion(session, event_id, cp.tree_size)
    return InclusionOut(proof=proof.to_json(), checkpoint=CheckpointPublic.model_validate(cp.model_dump()))


class ConsistencyOut(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]


@router.get("/consistency", response_model=ConsistencyOut)
def consistency_proof(
    session: SessionDep,
    user: Auditor,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> ConsistencyOut:
    """RFC 6962 consistency proof that the tree of size ``second`` extends the one of size ``first``."""
    if first > second:
        raise NotFound("first must not be larger than second")
    path = ledger.consistency(session, first, second)
    return ConsistencyOut(
        first=first,
        second=second,
        first_root=ledger.root_hash(session, first).hex(),
        second_root=ledger.root_hash(session, second).hex(),
        consistency_path=path,
    )


@router.post("/verify")
async def run_verify(
    request: Request, user: Auditor, addr: ClientAddr, store: StoreDep, keyring: KeyringDep
) -> dict[str, Any]:
    """Run the full verification now (can take long on a big archive) and record it in the log."""
    engine = request.app.state.ctx.engine
    report = await run_in_threadpool(audit.verify_all, engine, store, keyring)

    def record() -> None:
        from archive.db import session_scope

        with session_scope(engine) as session:
            audit.record_report(session, report, actor=f"user:{user.name}", client_addr=addr)

    await run_in_threadpool(record)
    return report.to_json()


@router.get("/verify")
def verification_results(
    session: SessionDep, user: Auditor, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    """The latest verification and fixity-sweep results, as recorded in the custody log."""
    return {
        "results": [
            {"event_id": e.id, "at": e.at.isoformat(), "action": e.action, "actor": e.actor, **e.details}
            for e in audit.last_reports(session, limit)
        ]
    }


exports = APIRouter(prefix="/api/v1/exports", tags=["exports"])
Exporter = Annotated[User, require(*export.EXPORT_ROLES)]


class ExportIn(BaseModel):
    case: str  # the case id, or its number
    agency: str | None = None  # when the number exists in several agencies
    media: list[str] | None = None  # a subset of the case's linked media (default: all of them)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


@exports.post("", response_class=FileResponse)
async def create_export(
    body: ExportIn, request: Request, user: Exporter, addr: ClientAddr, store: StoreDep, keyring: KeyringDep
) -> FileResponse:
    """An evidence export of one case as a zip: its linked originals, proxies and posters, signed
    manifests, every version of its text records (JSON and HTML), the custody events of the case,
    its records and media with inclusion proofs, the public keys and ``verify_export.py``.
    Reviewers export only the cases assigned to them. Logged as ``export.create``, ``case.export``
    and ``media.export``."""
    out = Path(tempfile.mkdtemp(prefix="custody-export-")) / "export.zip"
    try:
        res = await run_in_threadpool(
            partial(
                export.build_export,
                request.app.state.ctx.engine,
                store,
                keyring,
                body.case,
                out,
                actor=f"user:{user.name}",
                user=user,
                agency=body.agency,
                media_ids=body.media,
                client_addr=addr,
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
