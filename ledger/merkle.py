"""RFC 6962 Merkle tree hashing, proofs and their verification.

Hashing follows RFC 6962 §2.1: a leaf hash is ``SHA-256(0x00 ‖ data)``, an
interior node ``SHA-256(0x01 ‖ left ‖ right)``, the empty tree ``SHA-256("")``.
Proofs are the audit paths of RFC 6962 §2.1.1 (PATH) and the consistency
proofs of §2.1.2 (PROOF / SUBPROOF); verification follows the iterative
algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

Trees are addressed by *perfect subtrees*: node ``(level, index)`` is the root
of leaves ``[index·2^level, (index+1)·2^level)``; level 0 holds the leaf
hashes. Any range that RFC 6962's recursion asks for is the right-fold of a
few such nodes, so a store that keeps every perfect-subtree node answers a
proof with O(log n) reads. :class:`NodeReader` is that store's interface;
:class:`MemoryTree` is the in-memory one, and the list functions of the
public contract (:func:`root`, :func:`inclusion_proof`, ...) use it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ledger.errors import InvalidProof, OutOfRange

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryTree",
    "NodeId",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "range_nodes",
    "root",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_LEAF_HASH_PREFIX = b"\x00"
_NODE_HASH_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
"""``(level, index)``: the root of leaves ``[index << level, (index + 1) << level)``."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1 leaf hash: ``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(_LEAF_HASH_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1 interior node hash: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(_NODE_HASH_PREFIX + left + right).digest()


class NodeReader(Protocol):
    """Anything that returns stored perfect-subtree hashes (a database, a list of levels)."""

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Return the hash of every node in ``ids`` (all of them exist)."""
        ...


# --- planning: which ranges a proof needs, and which stored nodes make up a range ---


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``), RFC 6962 §2.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees whose right-fold is ``MTH(D[start:end])``, left to right.

    Valid for every range RFC 6962's recursion produces (``start`` is a multiple
    of a power of two at least ``end - start``), and for ``[0, size)``.
    """
    width = end - start
    if width and width & (width - 1) == 0 and start & (width - 1) == 0:
        # One perfect subtree: every range of an inclusion proof but the right edge's.
        level = width.bit_length() - 1
        return [(level, start >> level)]
    nodes: list[NodeId] = []
    while start < end:
        # Largest aligned perfect subtree beginning at `start` that fits in the range.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 6962 §2.1.1 PATH(index, D[0:size]) as leaf ranges, from the leaf upwards.

    At each level the path holds the sibling of the aligned block that contains
    ``index``, cut off at ``size``; a sibling that starts past the end is absent
    (the block is promoted unchanged, as in RFC 6962's unbalanced splits).
    """
    ranges: list[tuple[int, int]] = []
    level = 0
    while 1 << level < size:
        start = ((index >> level) ^ 1) << level
        if start < size:
            ranges.append((start, min(start + (1 << level), size)))
        level += 1
    return ranges


def _consistency_ranges(old_size: int, start: int, end: int, out: list[tuple[int, int]]) -> None:
    # RFC 6962 §2.1.2: SUBPROOF(m, D[n], b), iterated from the root downwards and reversed.
    complete = True
    while old_size != end:
        k = start + _split(end - start)
        if old_size <= k:
            out.append((k, end))
            end = k
        else:
            out.append((start, k))
            start = k
            complete = False
    if not complete:
        out.append((start, end))
    out.reverse()


def _fold(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _resolve(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    plans = [range_nodes(s, e) for s, e in ranges]
    found = reader.read_nodes(list({node for plan in plans for node in plan}))
    return [_fold([found[node] for node in plan]) for plan in plans]


def _check_size(size: int, available: int) -> None:
    if size < 0 or size > available:
        raise OutOfRange(f"tree size {size} is outside 0..{available}")


def root_of(reader: NodeReader, size: int) -> bytes:
    """The root of the first ``size`` leaves held by ``reader``."""
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], reader)[0]


def prove_inclusion(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise OutOfRange(f"leaf index {index} is not in a tree of size {size}")
    return _resolve(_inclusion_ranges(index, size), reader)


def prove_consistency(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """RFC 6962 §2.1.2 consistency proof from ``old_size`` to ``new_size`` (empty if equal or 0)."""
    if not 0 <= old_size <= new_size:
        raise OutOfRange(f"cannot prove consistency from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    _consistency_ranges(old_size, 0, new_size, ranges)
    return _resolve(ranges, reader)


class CompactRange:
    """The right edge of a growing tree: one perfect-subtree root per set bit of its size.

    Appending a leaf returns the interior nodes it completes, which is exactly
    what a store must write to keep every perfect subtree.
    """

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, stack: Sequence[bytes] = ()) -> None:
        if len(stack) != size.bit_count():
            raise ValueError(f"a compact range of size {size} holds {size.bit_count()} hashes")
        self.size = size
        self._stack = list(stack)

    @classmethod
    def from_reader(cls, reader: NodeReader, size: int) -> CompactRange:
        """Load the compact range of the first ``size`` leaves from stored nodes."""
        ids = range_nodes(0, size)
        found = reader.read_nodes(ids)
        return cls(size, [found[node] for node in ids])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return the ``(level, index, hash)`` of every node it creates."""
        index = self.size
        created = [(0, index, leaf)]
        h, level, n = leaf, 0, index
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            level += 1
            n >>= 1
            created.append((level, n, h))
        self._stack.append(h)
        self.size = index + 1
        return created

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves appended so far."""
        return _fold(self._stack) if self._stack else EMPTY_ROOT

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._stack)


class MemoryTree:
    """A tree that keeps every perfect-subtree node in lists: proofs in O(log n)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._edge = CompactRange()
        for h in leaf_hashes:
            self.append_hash(h)

    def __len__(self) -> int:
        return self._edge.size

    def append(self, data: bytes) -> None:
        """Append raw leaf data."""
        self.append_hash(leaf_hash(data))

    def append_hash(self, leaf: bytes) -> None:
        """Append an already computed leaf hash."""
        for level, _index, h in self._edge.append(leaf):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(h)

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return {(level, index): self._levels[level][index] for level, index in ids}

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all)."""
        size = len(self) if size is None else size
        _check_size(size, len(self))
        return root_of(self, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = len(self) if size is None else size
        _check_size(size, len(self))
        return prove_inclusion(self, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = len(self) if new_size is None else new_size
        _check_size(new_size, len(self))
        return prove_consistency(self, old_size, new_size)


# --- the public contract over lists of raw leaf data ---


def root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of raw leaf data; ``[]`` gives ``SHA-256("")``.

    >>> root([]).hex()[:16]
    'e3b0c44298fc1c14'
    >>> root([b""]) == leaf_hash(b"")
    True
    """
    return MemoryTree(leaf_hash(d) for d in leaves).root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for ``leaves[index]`` in the tree of all ``leaves``."""
    return MemoryTree(leaf_hash(d) for d in leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof from the tree of ``leaves[:old_size]`` to the tree of all ``leaves``."""
    return MemoryTree(leaf_hash(d) for d in leaves).consistency_proof(old_size)


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---


def _check_hashes(proof: Sequence[bytes], *roots: bytes) -> None:
    for h in (*roots, *proof):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise InvalidProof(f"every hash must be {HASH_SIZE} bytes")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(
    leaf_data: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_data`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Raises :class:`InvalidProof` otherwise.
    """
    _check_hashes(proof, root)
    # 1. The index must lie inside the tree.
    if not 0 <= index < size:
        raise InvalidProof(f"leaf index {index} is not in a tree of size {size}")
    # 2. Walk up from the leaf, combining with each proof hash on the side the index says.
    fn, sn, r = index, size - 1, leaf_hash(leaf_data)
    for p in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # 3. The path must end exactly at the root, with the expected hash.
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the path to the root")
    if not _same(r, root):
        raise InvalidProof("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree ``new_root`` of ``new_size`` leaves extends ``old_root``.

    A tree always extends the empty tree (``old_size == 0``, ``old_root`` the
    empty root, empty proof). Raises :class:`InvalidProof` otherwise.
    """
    _check_hashes(proof, old_root, new_root)
    # 1. Sizes must be ordered.
    if not 0 <= old_size <= new_size:
        raise InvalidProof(f"size {old_size} cannot grow into size {new_size}")
    # 2. Trivial cases: from the empty tree, or to the same size.
    if old_size == 0:
        if proof or not _same(old_root, EMPTY_ROOT):
            raise InvalidProof("the consistency proof from an empty tree is empty")
        return
    if old_size == new_size:
        if proof:
            raise InvalidProof("a consistency proof between equal sizes must be empty")
        if not _same(old_root, new_root):
            raise InvalidProof("two trees of the same size have different roots")
        return
    if not proof:
        raise InvalidProof("the consistency proof is empty")
    # 3. If the old tree is a perfect subtree, its root is the implicit first proof hash.
    hashes = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    # 4. Rebuild both roots from the shared path.
    for c in hashes[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 5. Both rebuilt roots must match, and the path must have reached the top.
    if sn != 0:
        raise InvalidProof("consistency proof is shorter than needed")
    if not _same(fr, old_root):
        raise InvalidProof("consistency proof does not lead to the old root")
    if not _same(sr, new_root):
        raise InvalidProof("consistency proof does not lead to the new root")
