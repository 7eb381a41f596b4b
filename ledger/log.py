"""The log: signed appends, checkpoints, proofs and verification over one store.

An append checks every submission (shape, size, canonical body, signer key,
Ed25519 signature) before it takes the head lock, re-checks the signer keys
under the lock, and writes the entries, the tree nodes they complete and the
new head in one transaction. A refused batch writes nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature

from ledger import checkpoint as _checkpoint
from ledger import note
from ledger.bundle import TlogProof, merge_signatures
from ledger.canonical import canonicalize
from ledger.entry import (
    GENESIS_PREV,
    MAX_ENTRY_BYTES,
    Entry,
    Submission,
    encode_entry,
    format_time,
    sign_submission,
    signing_message,
)
from ledger.errors import (
    InvalidEntry,
    InvalidSignature,
    LedgerError,
    OutOfRange,
    SignerKeyError,
    StaleHead,
    VerificationFailed,
)
from ledger.keys import GENESIS, KEY_ADD, KEY_REVOKE, KeyRecord, Keyring, KeyRole
from ledger.merkle import (
    CompactRange,
    NodeId,
    leaf_hash,
    prove_consistency,
    prove_inclusion,
    root_of,
)
from ledger.replay import Replay, replay
from ledger.store import AppendPlan, Head, LogStore, leaf_key
from ledger.verify_pool import Derive, SignatureCheck

__all__ = ["Log", "Receipt"]

logger = logging.getLogger(__name__)

_PARALLEL_VERIFY_MIN = 64  # below this, a thread hand-off costs more than it saves
_VERIFY_CHUNK = 256


# Proofs keep the nodes at this level and above in memory: one per 256 leaves or
# fewer (about 80k nodes, some 16 MiB, at 10M entries), so a proof reads only its
# lowest levels from the store. _KEPT_MAX bounds the memory for larger logs.
_KEPT_LEVEL = 8
_KEPT_MAX = 1 << 18


class _UpperNodes:
    """Proof reads through a memory of the upper tree levels.

    A stored node is the root of a complete subtree, so it never changes once
    written: a copy stays valid however the log grows. ``verify`` reads the
    store itself, so a changed database is still caught there.
    """

    def __init__(self, store: LogStore) -> None:
        self._store = store
        self._kept: dict[NodeId, bytes] = {}

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        kept = self._kept
        found = {node: kept[node] for node in ids if node in kept}
        if len(found) < len(ids):
            fetched = self._store.read_nodes([node for node in ids if node not in found])
            found.update(fetched)
            if len(kept) < _KEPT_MAX:
                kept.update((node, h) for node, h in fetched.items() if node[0] >= _KEPT_LEVEL)
        return found


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where an appended entry landed."""

    seq: int
    leaf_hash: bytes
    recorded_at: str


@dataclass(slots=True)
class _Checked:
    submission: Submission
    canonical_body: bytes


class Log:
    """An append-only, signed, verifiable log on a :class:`LogStore`."""

    def __init__(
        self,
        store: LogStore,
        *,
        signer: note.Signer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.store = store
        self.signer = signer
        self._clock = clock
        self._max_entry_bytes = max_entry_bytes
        self._public_keys: dict[str, KeyRecord] = {}
        self._raw_keys: dict[str, bytes] = {}  # key id -> raw Ed25519 public key
        self._pool: ThreadPoolExecutor | None = None
        self._nodes = _UpperNodes(store)

    # --- life cycle ---

    @classmethod
    def create(
        cls,
        store: LogStore,
        *,
        signer: note.Signer,
        origin: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Log:
        """Create the tables if needed and, for an empty log, append the genesis entry."""
        store.create()
        log = cls(store, signer=signer) if clock is None else cls(store, signer=signer, clock=clock)
        if store.head().size == 0:
            body = {"origin": origin or signer.name, "log_key": signer.verifier.to_string()}
            log.append([log.sign(GENESIS, body)])
            logger.info("created log %s with key %s", body["origin"], signer.key_id)
        return log

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self.store.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        genesis = self.entry(0)
        origin: str = genesis.body["origin"]
        return origin

    # --- signing helpers for the log's own key ---

    def sign(self, kind: str, body: Any) -> Submission:
        """A submission signed with the log key (genesis and key-registry entries)."""
        if self.signer is None:
            raise InvalidEntry("this log was opened without its signing key")
        return sign_submission(kind, body, key_id=self.signer.key_id, key=self.signer.private_key)

    def register_key(
        self, verifier_key: str, *, role: KeyRole = KeyRole.ENTRY, owner: str = ""
    ) -> Receipt:
        """Register a signer key (``role=LOG`` adds a log key, e.g. before rotating)."""
        body = {"key": verifier_key, "role": role.value, "owner": owner}
        return self.append([self.sign(KEY_ADD, body)])[0]

    def revoke_key(self, key_id: str, *, reason: str) -> Receipt:
        """Revoke a key: entries it signed stay valid, later ones are refused."""
        return self.append([self.sign(KEY_REVOKE, {"key_id": key_id, "reason": reason})])[0]

    # --- appending ---

    def _check_shape(self, submission: Submission) -> _Checked:
        if not isinstance(submission.body, dict):
            raise InvalidEntry(f"{submission.kind}: the body must be a JSON object")
        body = submission.canonical_body or canonicalize(submission.body)
        if len(body) + 400 > self._max_entry_bytes:
            raise InvalidEntry(
                f"{submission.kind}: the body is {len(body)} bytes; entries are limited to "
                f"{self._max_entry_bytes}"
            )
        return _Checked(submission, body)

    def _known_key(self, key_id: str, batch_keys: dict[str, KeyRecord]) -> KeyRecord | None:
        record = self._public_keys.get(key_id) or batch_keys.get(key_id)
        if record is None:
            found = self.store.keys_by_id([key_id]).get(key_id)
            if found is not None:
                record = self._public_keys[key_id] = found
        return record

    def _verify_signatures(self, checked: Sequence[_Checked]) -> None:
        # Keys registered earlier in the same batch may sign later entries of it.
        batch_keys: dict[str, KeyRecord] = {}
        for c in checked:
            if c.submission.kind == KEY_ADD and isinstance(c.submission.body.get("key"), str):
                try:
                    v = note.Verifier.from_string(c.submission.body["key"])
                except LedgerError:
                    continue
                batch_keys[v.key_id] = KeyRecord(v.key_id, v.to_string(), KeyRole.ENTRY, 0)
            if c.submission.kind == GENESIS and isinstance(c.submission.body.get("log_key"), str):
                v = note.Verifier.from_string(c.submission.body["log_key"])
                batch_keys[v.key_id] = KeyRecord(v.key_id, v.to_string(), KeyRole.LOG, -1)

        def verify_range(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                c = checked[i]
                s = c.submission
                record = self._known_key(s.key_id, batch_keys)
                if record is None:
                    continue  # reported as UnknownKey under the lock, with its position
                try:
                    record.public_key.verify(s.signature, signing_message(s.kind, c.canonical_body))
                except _CryptoInvalidSignature as exc:
                    raise InvalidSignature(
                        f"submission {i} ({s.kind}): the signature by {s.key_id!r} does not verify"
                    ) from exc

        n = len(checked)
        if n < _PARALLEL_VERIFY_MIN:
            verify_range(0, n)
            return
        # Ed25519 verification releases the GIL: two threads use both cores.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ledger-verify")
        futures = [
            self._pool.submit(verify_range, lo, min(n, lo + _VERIFY_CHUNK))
            for lo in range(0, n, _VERIFY_CHUNK)
        ]
        for f in futures:
            f.result()

    def check_signatures(
        self, submissions: Sequence[Submission], *, derive: Derive | None = None
    ) -> SignatureCheck | None:
        """Start checking a batch's signatures in worker processes, for a later :meth:`append`.

        None when it would not pay (a small batch) or the batch registers keys or names a
        key this log does not know; :meth:`append` then checks the batch itself. ``derive``
        is computed from each canonical body on the way (:class:`SignatureCheck`).
        """
        if len(submissions) < _PARALLEL_VERIFY_MIN:
            return None
        items: list[tuple[bytes, bytes]] = []
        for s in submissions:
            if s.kind in (KEY_ADD, GENESIS) or not isinstance(s.body, dict):
                return None
            raw_key = self._raw_keys.get(s.key_id)
            if raw_key is None:
                record = self._known_key(s.key_id, {})
                if record is None:
                    return None
                raw_key = note.Verifier.from_string(record.verifier_key).public_key_bytes
                self._raw_keys[s.key_id] = raw_key
            items.append((s.canonical_body or canonicalize(s.body), raw_key))
        return SignatureCheck(submissions, items, derive=derive)

    def append(
        self,
        submissions: Sequence[Submission],
        *,
        expect_size: int | None = None,
        expect_prev: bytes | None = None,
        signatures_checked: bool = False,
        signatures: SignatureCheck | None = None,
    ) -> list[Receipt]:
        """Append a batch atomically: every submission is appended, or none is.

        ``expect_size`` and ``expect_prev`` (the leaf hash of the last entry)
        make the append conditional on the head the client saw: if someone else
        appended meanwhile, :class:`StaleHead` is raised and nothing is written.
        ``signatures_checked`` skips the Ed25519 check for callers that already
        verified each submission against the same key registry. ``signatures``, from
        :meth:`check_signatures` over these submissions (or a batch holding them), is
        waited for once the entries are built, before anything is committed.
        """
        if not submissions:
            return []
        checked = [self._check_shape(s) for s in submissions]
        covered = signatures is not None and signatures.covers(
            submissions, [c.canonical_body for c in checked]
        )
        pending = signatures if covered else None
        if not signatures_checked and pending is None:
            self._verify_signatures(checked)
        recorded_at = format_time(self._clock())
        receipts: list[Receipt] = []

        def build(head: Head, store: LogStore) -> AppendPlan:
            if expect_size is not None and head.size != expect_size:
                raise StaleHead(f"the log has {head.size} entries, not {expect_size}")
            receipts.clear()
            plan = AppendPlan()
            edge = CompactRange.from_reader(store, head.size)
            prev = (
                store.read_nodes([(0, head.size - 1)])[(0, head.size - 1)]
                if head.size
                else GENESIS_PREV
            )
            if expect_prev is not None and not hmac.compare_digest(expect_prev, prev):
                raise StaleHead(
                    f"the last entry's hash is {prev.hex()}, not {expect_prev.hex()}: "
                    "the log moved since the submitter read it"
                )
            keyring = Keyring(
                store.keys_by_id(sorted({c.submission.key_id for c in checked})).values()
            )
            for i, c in enumerate(checked):
                s = c.submission
                seq = head.size + i
                try:
                    if s.kind == KEY_REVOKE and isinstance(s.body.get("key_id"), str):
                        target = s.body["key_id"]
                        if target not in keyring:
                            keyring = Keyring([*keyring, *store.keys_by_id([target]).values()])
                    if s.kind != GENESIS:
                        keyring.check(s.key_id, seq)
                    changed = keyring.apply(seq, s.kind, s.body, s.key_id)
                except SignerKeyError as exc:
                    raise type(exc)(f"submission {i} ({s.kind}): {exc}", key_id=exc.key_id) from exc
                except LedgerError as exc:
                    raise type(exc)(f"submission {i} ({s.kind}): {exc}") from exc
                if changed is not None:
                    if changed.revoked_seq == seq:
                        plan.revoked.append((changed.key_id, seq))
                    else:
                        plan.new_keys.append(changed)
                raw = encode_entry(
                    seq=seq,
                    prev=prev,
                    recorded_at=recorded_at,
                    kind=s.kind,
                    canonical_body=c.canonical_body,
                    key_id=s.key_id,
                    signature=s.signature,
                )
                if len(raw) > self._max_entry_bytes:
                    raise InvalidEntry(f"submission {i} ({s.kind}): entry exceeds the size limit")
                prev = leaf_hash(raw)
                plan.entries.append((seq, leaf_key(prev), raw))
                plan.nodes.extend(edge.append(prev))
                receipts.append(Receipt(seq, prev, recorded_at))
            plan.head = Head(edge.size, edge.root())
            if pending is not None and not signatures_checked:
                pending.result()  # a bad signature raises here and nothing is written
            return plan

        plan = self.store.append(build)
        for key in plan.new_keys:
            self._public_keys[key.key_id] = key
        for key_id, _ in plan.revoked:
            self._public_keys.pop(key_id, None)
            self._raw_keys.pop(key_id, None)
        assert plan.head is not None
        logger.debug("appended %d entries; size %d", len(receipts), plan.head.size)
        return receipts

    # --- reading ---

    def head(self) -> Head:
        return self.store.head()

    def __len__(self) -> int:
        return self.store.head().size

    def entry(self, seq: int) -> Entry:
        raws = self.store.read_entries(seq, seq + 1)
        if not raws:
            raise OutOfRange(f"there is no entry {seq}")
        return Entry.parse(raws[0])

    def entries(self, start: int, end: int) -> list[Entry]:
        size = len(self)
        if not 0 <= start <= end <= size:
            raise OutOfRange(f"entries {start}..{end} are outside 0..{size}")
        return [Entry.parse(raw) for raw in self.store.read_entries(start, end)]

    def iter_raw(self, end: int | None = None, *, chunk: int = 4096) -> Iterator[list[bytes]]:
        end = len(self) if end is None else end
        return self.store.iter_entries(0, end, chunk=chunk)

    def find(self, leaf: bytes) -> int:
        """The sequence number of the entry with this leaf hash."""
        for seq, raw in self.store.find_by_leaf_key(leaf_key(leaf)):
            if leaf_hash(raw) == leaf:
                return seq
        raise OutOfRange(f"no entry has leaf hash {leaf.hex()}")

    def key_records(self) -> list[KeyRecord]:
        return self.store.keys()

    # --- tree ---

    def _size(self, size: int | None) -> int:
        current = len(self)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise OutOfRange(f"tree size {size} is outside 0..{current}")
        return size

    def root(self, size: int | None = None) -> bytes:
        return root_of(self._nodes, self._size(size))

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        return prove_inclusion(self._nodes, seq, self._size(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return prove_consistency(self._nodes, old_size, self._size(new_size))

    # --- checkpoints ---

    def checkpoint(self) -> str:
        """Sign (and store) a C2SP checkpoint of the current head."""
        if self.signer is None:
            raise InvalidEntry("this log was opened without its signing key")
        head = self.store.head()
        existing = self.store.checkpoint(head.size)
        if existing is not None:
            return existing[1]
        signed = _checkpoint.sign_checkpoint(
            _checkpoint.Checkpoint(self.origin, head.size, head.root), self.signer
        )
        self.store.add_checkpoint(head.size, signed)
        logger.info("checkpoint size %d root %s", head.size, head.root.hex())
        return signed

    def latest_checkpoint(self) -> str | None:
        found = self.store.checkpoint()
        return None if found is None else found[1]

    def cosigned_checkpoint(self, size: int | None = None) -> str:
        """The checkpoint at ``size`` (default: the latest) with every stored cosignature."""
        found = self.store.checkpoint(size)
        if found is None:
            raise OutOfRange("no checkpoint" + ("" if size is None else f" at size {size}"))
        return merge_signatures(found[1], self.store.cosignatures(found[0]).values())

    def proof_bundle(self, seq: int) -> str:
        """A C2SP tlog-proof for entry ``seq`` against the latest checkpoint (signed now if needed)."""
        latest = self.store.checkpoint()
        if latest is None or latest[0] <= seq:
            if seq >= len(self):
                raise OutOfRange(f"there is no entry {seq}")
            self.checkpoint()
            latest = self.store.checkpoint()
            assert latest is not None
        size = latest[0]
        return TlogProof(
            index=seq,
            hashes=tuple(self.inclusion_proof(seq, size)),
            checkpoint=self.cosigned_checkpoint(size),
            extra=self.store.read_entries(seq, seq + 1)[0],
        ).to_text()

    def log_verifiers(self) -> list[note.Verifier]:
        return Keyring(self.store.keys()).log_verifiers()

    def add_cosignature(self, size: int, witness: str, cosigned_note: str) -> None:
        self.store.add_cosignature(size, witness, cosigned_note)

    # --- verification ---

    def verify(self, *, workers: int = 2) -> Replay:
        """Replay the whole log and check stored nodes, head and latest checkpoint.

        Raises :class:`VerificationFailed` naming the first bad entry.
        """
        head = self.store.head()

        def compare_nodes(start: int, leaves: list[bytes], edge: CompactRange) -> None:
            trial = edge.copy()
            created = [node for h in leaves for node in trial.append(h)]
            stored = self.store.read_nodes([(lvl, idx) for lvl, idx, _ in created])
            for level, idx, h in created:
                if stored.get((level, idx)) != h:
                    bad = idx << level if level == 0 else ((idx + 1) << level) - 1
                    raise VerificationFailed(
                        f"stored tree node ({level}, {idx}) does not match the entries", seq=bad
                    )

        result = replay(self.iter_raw(head.size), workers=workers, on_chunk=compare_nodes)
        if result.size != head.size:
            raise VerificationFailed(
                f"the head says {head.size} entries but {result.size} were found", seq=result.size
            )
        if result.root != head.root:
            raise VerificationFailed("the stored head root does not match the entries", seq=None)
        latest = self.store.checkpoint()
        if latest is not None:
            size, signed = latest
            try:
                cp = _checkpoint.verify_checkpoint(signed, result.keyring.log_verifiers())
            except LedgerError as exc:
                raise VerificationFailed(f"checkpoint {size}: {exc}", seq=None) from exc
            if cp.size != size or cp.root_hash != root_of(self.store, size):
                raise VerificationFailed(f"checkpoint {size} does not match the tree", seq=None)
        return result
