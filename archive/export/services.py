"""Build an evidence export: one zip a court can check offline with the ``verify_export.py`` inside.

Layout::

    README.txt                      how to check it
    verify_export.py                the standalone verifier (stdlib + cryptography)
    index.json, index.sig.json      every file with SHA-256 and size, signed (a dropped or added
                                    file, or a truncated zip, fails the check)
    keys.json                       the public keys (key id = SHA-256 of the raw key, first 16 hex)
    media/<id>/original<ext>        the archived bytes, as docked
    media/<id>/proxy.mp4 | poster.jpg
    media/<id>/manifest.json        signed manifest {manifest, signature, key_id}
    log/checkpoint.json             a signed checkpoint of the custody log, made for this export
    log/events.json                 each custody event of these items, with its inclusion proof
    records/                        text records (JSON and HTML) once cases provide them (issue 3)

Objects stream from S3 into the zip in 1 MiB chunks (bounded memory for multi-GB originals) and
are hashed on the way; the export's own index digest goes into the custody log.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive import events
from archive.clock import Clock, as_utc, utcnow
from archive.db import session_scope
from archive.errors import InvalidInput, NotFound
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint, LogLeaf
from archive.models import Derivative, Event, Manifest, Media, MediaState
from archive.signing import Keyring, canonical_json
from archive.storage import ObjectStore

VERIFIER = Path(__file__).with_name("verify_export.py")
FORMAT = "custody-export/v1"
EXPORTABLE = (MediaState.READY, MediaState.UNPLAYABLE)
README = """Custody evidence export {export_id}

Check it offline (Python 3.9+ with the 'cryptography' package, nothing else):

    python3 verify_export.py {name}

It prints every check it makes and ends with RESULT: OK or RESULT: FAILED. Compare the key ids it
prints with the signing keys the agency publishes, or pin them: --trusted-keys keys.json.
"""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    export_id: str
    index_sha256: str
    media_ids: list[str]
    events: int
    checkpoint_id: int
    bytes_written: int


class _Writer:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.files: dict[str, dict[str, Any]] = {}

    def add_bytes(self, name: str, data: bytes) -> None:
        self.zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        self.files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def add_json(self, name: str, doc: Any) -> None:
        self.add_bytes(name, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8"))

    def add_object(self, store: ObjectStore, bucket: str, key: str, name: str) -> tuple[str, int]:
        h = hashlib.sha256()
        n = 0
        # Media is already compressed: stored, not deflated (and 4 GB originals need ZIP64).
        with (
            self.zf.open(zipfile.ZipInfo(name), "w", force_zip64=True) as out,
            store.open_stream(bucket, key) as chunks,
        ):
            for chunk in chunks:
                out.write(chunk)
                h.update(chunk)
                n += len(chunk)
        self.files[name] = {"sha256": h.hexdigest(), "size": n}
        return h.hexdigest(), n


def _ext(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix.isascii() and 1 < len(suffix) <= 8 and suffix[1:].isalnum() else ""


def build_export(
    engine: Engine,
    store: ObjectStore,
    keyring: Keyring,
    media_ids: list[str],
    out: Path,
    *,
    actor: str,
    case_ref: str | None = None,
    client_addr: str = "",
    clock: Clock = utcnow,
) -> ExportResult:
    if not media_ids:
        raise InvalidInput("nothing to export: no media items")
    export_id = hashlib.sha256(f"{actor}{clock().isoformat()}{sorted(media_ids)}".encode()).hexdigest()[:16]
    # A checkpoint made now covers every event of these items committed so far.
    with session_scope(engine) as session:
        cp = ledger.sign_checkpoint(session, keyring, clock=clock)
    with Session(engine) as session:
        items = []
        for mid in dict.fromkeys(media_ids):
            m = session.get(Media, mid)
            if m is None:
                raise NotFound(f"no media {mid}")
            if m.state not in EXPORTABLE:
                raise InvalidInput(f"media {mid} is {m.state}: only signed items can be exported")
            ders = list(session.exec(select(Derivative).where(Derivative.media_id == mid)))
            mf = session.exec(
                select(Manifest).where(Manifest.media_id == mid).order_by(col(Manifest.version).desc())
            ).first()
            if mf is None:
                raise NotFound(f"media {mid} has no signed manifest")
            items.append((m, ders, mf))
        evs = list(
            session.exec(
                select(Event, LogLeaf.idx)
                .join(LogLeaf, col(LogLeaf.event_id) == Event.id)
                .where(
                    Event.subject_type == "media",
                    col(Event.subject_id).in_([m.id for m, _, _ in items]),
                    LogLeaf.idx < cp.tree_size,
                )
                .order_by(col(LogLeaf.idx))
            )
        )
        proofs = [ledger.inclusion(session, ev.id or 0, cp.tree_size).to_json() for ev, _ in evs]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        w = _Writer(zf)
        w.add_bytes("README.txt", README.format(export_id=export_id, name=out.name).encode())
        w.add_bytes("verify_export.py", VERIFIER.read_bytes())
        keys = [
            {"key_id": k.key_id, "algorithm": k.algorithm, "public_key_pem": k.public_key_pem}
            for k in keyring.public_keys()
        ]
        w.add_json("keys.json", {"keys": keys})
        listing = []
        for m, ders, mf in items:
            base = f"media/{m.id}"
            files = [{"role": "original", "path": f"{base}/original{_ext(m.file_name)}"}]
            store_files = [(store.originals, m.object_key, files[0]["path"])]
            for d in sorted(ders, key=lambda d: d.kind):
                p = f"{base}/{d.kind.value}{PurePosixPath(d.object_key).suffix}"
                files.append({"role": d.kind.value, "path": p})
                store_files.append((store.derived, d.object_key, p))
            for bucket, key, name in store_files:
                w.add_object(store, bucket, key, name)
            w.add_json(
                f"{base}/manifest.json", {"manifest": mf.body, "signature": mf.signature, "key_id": mf.key_id}
            )
            listing.append({"media_id": m.id, "file_name": m.file_name, "files": files})
        w.add_json("log/checkpoint.json", _checkpoint_json(cp))
        w.add_json("log/events.json", proofs)
        index = {
            "format": FORMAT,
            "export_id": export_id,
            "case": case_ref,
            "created_at": as_utc(clock()).isoformat(),
            "created_by": actor,
            "media": listing,
            "checkpoint": {"tree_size": cp.tree_size, "root_hash": cp.root_hash},
            "files": w.files,
        }
        sig = keyring.sign(index)
        index_bytes = json.dumps(index, indent=1, ensure_ascii=False).encode("utf-8")
        zf.writestr("index.json", index_bytes, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("index.sig.json", json.dumps({"key_id": sig.key_id, "signature": sig.signature_b64}))
    tmp.replace(out)
    index_sha = hashlib.sha256(canonical_json(index)).hexdigest()
    # The export is itself on record: one entry for the package, one in each item's history.
    with session_scope(engine) as session:
        details = {
            "export_id": export_id,
            "case": case_ref,
            "index_sha256": index_sha,
            "media": [m.id for m, _, _ in items],
        }
        events.record(
            session,
            actor=actor,
            action="export.create",
            subject_type="export",
            subject_id=export_id,
            client_addr=client_addr,
            details=details,
            clock=clock,
        )
        for m, _, _ in items:
            events.record(
                session,
                actor=actor,
                action="media.export",
                subject_type="media",
                subject_id=m.id,
                client_addr=client_addr,
                details={"export_id": export_id, "case": case_ref},
                clock=clock,
            )
    return ExportResult(
        out, export_id, index_sha, [m.id for m, _, _ in items], len(proofs), cp.id or 0, out.stat().st_size
    )


def _checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {"body": cp.body, "signature": cp.signature, "key_id": cp.key_id}
