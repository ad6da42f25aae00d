"""Merkle tree hashing and proofs exactly as RFC 6962 section 2.1 / RFC 9162 section 2.1.

Pure functions, no database: the ledger service, the auditor's verification and the tests all use
these, and ``archive/export/verify_export.py`` carries a line-for-line copy so a court can check an
export without our code. Leaf hashes are ``SHA-256(0x00 || leaf)`` and interior nodes
``SHA-256(0x01 || left || right)``: the prefixes stop a leaf from being passed off as a node
(the second-preimage attack RFC 6962 section 2.1 closes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from archive.errors import IntegrityError
from archive.i18n import _

EMPTY_ROOT = hashlib.sha256(b"").digest()

# MTH(D[start:end]) for a range of the log: the one thing proof construction needs.
SubtreeHash = Callable[[int, int], bytes]


class ProofInvalid(IntegrityError):
    """An inclusion or consistency proof does not hold: the log was changed or the proof is wrong."""

    code = "ledger.proof_invalid"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


class StreamingRoot:
    """MTH of a growing prefix in O(log n) memory: a stack of perfect subtrees, largest first.

    Lets the auditor recompute the root at every checkpoint size in one pass over 10^6 leaves
    without holding them all."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf_hash_: bytes) -> None:
        self._stack.append((1, leaf_hash_))
        self.size += 1
        while len(self._stack) >= 2 and self._stack[-1][0] == self._stack[-2][0]:
            (n, right), (_, left) = self._stack.pop(), self._stack.pop()
            self._stack.append((2 * n, node_hash(left, right)))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1][1]
        for _level, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    s = StreamingRoot()
    for h in leaf_hashes:
        s.add(h)
    return s.root()


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1, top-down and reversed (leaf-side sibling first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index - lo < k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 section 2.1.2."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(subtree(lo, hi))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2. Raises ProofInvalid naming the leaf and tree."""
    if index >= size:
        raise ProofInvalid(
            _("leaf index {index} is outside a tree of size {size}").format(index=index, size=size)
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofInvalid(
                _("inclusion proof for leaf {index} of {size} is too long").format(index=index, size=size)
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofInvalid(
            _(
                "leaf {index} is not in the tree of size {size} with root {hex}: the "
                "entry or the log was changed"
            ).format(index=index, size=size, hex=root.hex())
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: the tree of size ``second`` extends the one of size ``first``."""
    if first > second:
        raise ProofInvalid(_("size {first} is larger than size {second}").format(first=first, second=second))
    if first == second:
        if proof or first_root != second_root:
            raise ProofInvalid(
                _("two different roots for the same size {first}: the log was rewritten").format(first=first)
            )
        return
    if first == 0:
        if proof:
            raise ProofInvalid(_("a consistency proof from the empty tree must be empty"))
        return
    if not proof:
        raise ProofInvalid(
            _("empty consistency proof from {first} to {second}").format(first=first, second=second)
        )
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid(
                _("consistency proof from {first} to {second} is too long").format(first=first, second=second)
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofInvalid(
            _(
                "the tree of size {second} does not extend the tree of size {first}: "
                "entries before position {first} were changed or removed"
            ).format(second=second, first=first)
        )
