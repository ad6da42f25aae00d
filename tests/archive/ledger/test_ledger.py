"""The custody log as a Merkle tree: RFC 6962 proofs, dense sequencing on PostgreSQL, signed
checkpoints, and the append-only triggers on the ledger tables."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from archive import events
from archive.db import session_scope
from archive.ledger import merkle
from archive.ledger import services as ledger
from archive.ledger.models import Checkpoint, LogLeaf
from archive.models import Event
from archive.signing import Keyring


def naive_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split_point(len(leaves))
    return merkle.node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def test_rfc6962_test_vectors() -> None:
    # Roots from the Certificate Transparency reference test data (leaves are the 8 test inputs).
    inputs = [b"", b"\x00", b"\x10", b" !", b"01", b"@ABC", b"PQRSTUVW", b"`abcdefghijklmno"]
    roots = {
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    hashes = [merkle.leaf_hash(i) for i in inputs]
    for n, want in roots.items():
        assert merkle.root_of(hashes[:n]).hex() == want


def test_every_proof_verifies_and_every_altered_proof_fails() -> None:
    for n in range(1, 40):
        leaves = [merkle.leaf_hash(str(i).encode()) for i in range(n)]

        def sub(a: int, b: int, leaves: list[bytes] = leaves) -> bytes:
            return naive_mth(leaves[a:b])

        root = naive_mth(leaves)
        for i in range(n):
            proof = merkle.inclusion_proof(i, n, sub)
            merkle.verify_inclusion(i, n, leaves[i], proof, root)
            with pytest.raises(merkle.ProofInvalid):
                merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), proof, root)
            if proof:
                bad = [*proof[:-1], merkle.leaf_hash(b"x")]
                with pytest.raises(merkle.ProofInvalid):
                    merkle.verify_inclusion(i, n, leaves[i], bad, root)
        for m in range(1, n):
            proof = merkle.consistency_proof(m, n, sub)
            merkle.verify_consistency(m, n, naive_mth(leaves[:m]), root, proof)
            # A log that changed entry 0 after the first checkpoint cannot prove consistency.
            rewritten = [merkle.leaf_hash(b"rewritten"), *leaves[1:]]
            with pytest.raises(merkle.ProofInvalid):
                merkle.verify_consistency(m, n, naive_mth(leaves[:m]), naive_mth(rewritten), proof)


def _add_events(engine: Engine, n: int) -> None:
    with session_scope(engine) as session:
        for i in range(n):
            events.record(
                session,
                actor="user:test",
                action="media.view",
                subject_type="media",
                subject_id=f"m{i}",
                details={"i": i, "offset_s": i / 3},
            )


def test_sequencer_dense_indices_stored_subtrees_and_proofs(engine: Engine, tmp_path: Path) -> None:
    _add_events(engine, 700)  # crosses two 256-leaf tiles and one 512 node
    with session_scope(engine) as session:
        assert ledger.sequence(session, batch=300) == 300
        assert ledger.sequence_all(session) == 400
    with Session(engine) as session:
        leaves = list(ledger.iter_leaves(session, batch=97))
        assert [leaf.idx for leaf in leaves] == list(range(700))
        hashes = [bytes.fromhex(leaf.leaf_hash) for leaf in leaves]
        for leaf in leaves:
            ev = session.get(Event, leaf.event_id)
            assert ev is not None and ledger.event_leaf_hash(ev).hex() == leaf.leaf_hash
        root = naive_mth(hashes)
        assert ledger.root_hash(session) == root
        for size in (1, 255, 256, 257, 512, 699, 700):
            assert ledger.root_hash(session, size) == naive_mth(hashes[:size])
        for eid in (leaves[0].event_id, leaves[300].event_id, leaves[699].event_id):
            p = ledger.inclusion(session, eid, 700)
            merkle.verify_inclusion(
                p.leaf_index, 700, bytes.fromhex(p.leaf_hash), [bytes.fromhex(h) for h in p.path], root
            )
        proof = [bytes.fromhex(h) for h in ledger.consistency(session, 300, 700)]
        merkle.verify_consistency(300, 700, naive_mth(hashes[:300]), root, proof)


def test_events_committed_out_of_order_are_all_sequenced_once(engine: Engine) -> None:
    """PostgreSQL hands out ids at INSERT: a slow transaction commits a lower id after a higher one
    was sequenced. It must still get a leaf (after it), never be skipped."""
    slow = Session(engine)
    events.record(slow, actor="system:t", action="slow", subject_type="t", subject_id="1")  # id N, open
    _add_events(engine, 3)  # ids N+1.. committed
    with session_scope(engine) as session:
        assert ledger.sequence_all(session) == 3
    slow.commit()
    slow.close()
    with session_scope(engine) as session:
        assert ledger.sequence_all(session) == 1
    with Session(engine) as session:
        rows = list(session.exec(select(LogLeaf).order_by(LogLeaf.idx)))  # type: ignore[arg-type]
        assert [r.idx for r in rows] == [0, 1, 2, 3]
        assert rows[3].event_id < rows[0].event_id  # the late commit is the last leaf


def test_two_sequencers_never_race(engine: Engine) -> None:
    _add_events(engine, 400)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with session_scope(engine) as session:
                while ledger.sequence(session, batch=50):
                    pass
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(engine) as session:
        idx = [leaf.idx for leaf in ledger.iter_leaves(session)]
        assert idx == list(range(400))
        assert len({leaf.event_id for leaf in ledger.iter_leaves(session)}) == 400


def test_checkpoint_is_signed_and_survives_key_rotation(engine: Engine, tmp_path: Path) -> None:
    ring = Keyring(tmp_path / "keys")
    _add_events(engine, 5)
    with session_scope(engine) as session:
        cp1 = ledger.sign_checkpoint(session, ring)
        assert ledger.sign_checkpoint(session, ring, force=False).id == cp1.id  # unchanged tree
    old_key = cp1.key_id
    ring.rotate()
    _add_events(engine, 2)
    with session_scope(engine) as session:
        cp2 = ledger.sign_checkpoint(session, ring, force=False)
    assert (cp1.tree_size, cp2.tree_size) == (5, 7) and cp2.key_id != old_key
    with Session(engine) as session:
        for cp in session.exec(select(Checkpoint)):
            ledger.verify_checkpoint(cp, ring.public_keys(), ring)  # old signature still verifies


@pytest.mark.parametrize("table", ["log_leaves", "log_nodes", "log_checkpoints"])
def test_ledger_tables_refuse_update_and_delete(engine: Engine, tmp_path: Path, table: str) -> None:
    _add_events(engine, 300)
    with session_scope(engine) as session:
        ledger.sign_checkpoint(session, Keyring(tmp_path / "keys"))
    # The table names come from the parametrize list above, not from input.
    column = "id" if table == "log_checkpoints" else "idx"
    for stmt in (
        f"UPDATE {table} SET {column} = {column}",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table}",
    ):
        with engine.connect() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text(stmt))


# Reference data of the Certificate Transparency project (RFC 6962): the 8 leaves above, audit
# paths and consistency proofs computed by an independent implementation.
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def test_proofs_match_the_certificate_transparency_reference_vectors() -> None:
    """Our proofs are byte for byte the reference implementation's, and both our verifier and the
    standalone one in every export accept them."""
    from tests.archive.export.test_export import V  # the standalone verify_export.py, loaded as a module

    inputs = [b"", b"\x00", b"\x10", b" !", b"01", b"@ABC", b"PQRSTUVW", b"`abcdefghijklmno"]
    leaves = [merkle.leaf_hash(i) for i in inputs]

    def sub(a: int, b: int) -> bytes:
        return naive_mth(leaves[a:b])

    for index, size, want in CT_INCLUSION:
        proof = merkle.inclusion_proof(index, size, sub)
        assert [p.hex() for p in proof] == want, (index, size)
        root = naive_mth(leaves[:size])
        merkle.verify_inclusion(index, size, leaves[index], proof, root)
        assert V.inclusion_holds(index, size, leaves[index], proof, root)
        assert not V.inclusion_holds(index, size, leaves[(index + 1) % 8], proof, root) or size == 1
    for first, second, want in CT_CONSISTENCY:
        proof = merkle.consistency_proof(first, second, sub)
        assert [p.hex() for p in proof] == want, (first, second)
        merkle.verify_consistency(first, second, naive_mth(leaves[:first]), naive_mth(leaves[:second]), proof)
