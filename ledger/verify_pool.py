"""Entry signatures checked in worker processes while the caller does other work.

A caller that has more to do with a batch than append it -- the trace engine parses
events, computes their ids and runs the custody rules -- starts the Ed25519 checks of
the batch here, goes on with its own work, and hands the pending :class:`SignatureCheck`
to :meth:`ledger.log.Log.append`, which waits for it before the batch is committed.

Threads cannot do this: a thread releases the GIL inside each verification, but waits
for it again before the next one while the caller's Python code holds it (up to the
interpreter's 5 ms switch interval), so one busy caller starves it. Worker processes
have their own interpreters. They are spawned (a fresh interpreter) once per process
and kept for its life; they run nothing but :func:`verify_chunk`. A fork would hand
each worker a copy of every file descriptor the caller has open at that moment -- a
server's sockets, a browser driver's pipes -- and keep them open for as long as the
worker lives; a fork server cannot be used again from a forked child. As with any
spawned worker, a script that checks signatures in bulk needs the usual
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.entry import Submission, signing_message
from ledger.errors import InvalidSignature

__all__ = ["SignatureCheck", "verify_chunk"]

# One worker: the caller keeps a core busy with its own work, and a second worker would
# take turns with it on that core (no faster on two cores, slower on PostgreSQL; scripts/bench domain).
WORKERS = 1
# Signatures per task: small enough that the first results come back while the caller
# is still busy, large enough that the hand-off (about 10 us) stays far below the checks.
_TASK = 128

_pool: ProcessPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()
_worker_keys: dict[bytes, Ed25519PublicKey] = {}  # in each worker: raw key -> parsed key
# Submissions are numbered across checks as they are handed out (_issued, caller only).
# When the caller overtakes the workers -- it needs a derived value before its chunk is
# back and computes it itself -- it records that number in shared memory, and workers
# skip deriving up to there: each value is computed once, by whichever side is free.
_issued = 0
_overtaken: Any = None  # multiprocessing.RawValue("q"), shared with the forked workers


Derive = Callable[[bytes], Any]


def verify_chunk(
    chunk: Sequence[tuple[bytes, str, bytes, bytes]],
    derive: Derive | None = None,
    number: int = 0,
) -> tuple[int | None, list[Any]]:
    """Check ``(raw public key, kind, canonical body, signature)`` entries.

    Returns the offset of the first bad signature (None if all verify) and, with
    ``derive``, what it makes of each canonical body -- None for those the caller
    has already overtaken (``number`` is the first entry's number across checks).
    """
    derived: list[Any] = []
    overtaken = _overtaken
    for offset, (raw_key, kind, body, signature) in enumerate(chunk):
        key = _worker_keys.get(raw_key)
        if key is None:
            key = _worker_keys[raw_key] = Ed25519PublicKey.from_public_bytes(raw_key)
        try:
            key.verify(signature, signing_message(kind, body))
        except _CryptoInvalidSignature:
            return offset, derived
        if derive is not None:
            behind = overtaken is not None and number + offset <= overtaken.value
            derived.append(None if behind else derive(body))
    return None, derived


def _shared_pool() -> ProcessPoolExecutor:
    """This process's worker pool, started on first use (a child process starts its own)."""
    global _pool, _pool_pid, _overtaken
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            context = multiprocessing.get_context("spawn")
            _overtaken = context.RawValue("q", -1)  # shared memory, handed to each worker
            _pool = ProcessPoolExecutor(
                max_workers=WORKERS,
                mp_context=context,
                initializer=_share_progress,
                initargs=(_overtaken,),
            )
            _pool_pid = os.getpid()
            # A multiprocessing child skips atexit and waits for its own children as it
            # ends: stop the workers first, or it would wait for them forever.
            multiprocessing.util.Finalize(None, _shutdown, exitpriority=100)
        return _pool


def _share_progress(overtaken: Any) -> None:
    """In a new worker: where the caller has overtaken the workers (see ``_issued``)."""
    global _overtaken
    _overtaken = overtaken


def _discard_pool(pool: ProcessPoolExecutor) -> None:
    """Forget a pool whose worker died (killed, out of memory): the next check starts another."""
    global _pool
    with _pool_lock:
        if _pool is pool and _pool_pid == os.getpid():
            pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


@atexit.register
def _shutdown() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.shutdown(cancel_futures=True)


class SignatureCheck:
    """The pending Ed25519 checks of a batch of submissions, running in worker processes.

    ``items`` holds, per submission, its canonical body and the raw public key of the key
    it names, as the caller's key registry knows it now; the log still checks, under its
    write lock, that each key may sign at the entry's position (not revoked, not unknown).
    ``derive``, a module-level function (workers receive it by name), is applied to each
    canonical body whose signature verified; :meth:`derived` hands out what came back
    so far without waiting, so the caller computes the rest itself.

    Examples
    --------
    >>> import hashlib
    >>> from ledger import note
    >>> from ledger.canonical import canonicalize
    >>> from ledger.entry import sign_submission
    >>> signer = note.Signer.generate("maker")
    >>> batch = [sign_submission("event.x", {"n": n}, key_id="k", key=signer.private_key)
    ...          for n in range(3)]
    >>> def items(subs):
    ...     return [(canonicalize(s.body), signer.verifier.public_key_bytes) for s in subs]
    >>> check = SignatureCheck(batch, items(batch), derive=len)
    >>> bodies = [canonicalize(s.body) for s in batch]
    >>> check.covers(batch[1:], bodies[1:]), check.result(), [check.derived(i) for i in range(3)]
    (True, None, [7, 7, 7])
    >>> forged = batch[:2] + [sign_submission("event.x", {"n": 9}, key_id="k",
    ...                                       key=note.Signer.generate("x").private_key)]
    >>> SignatureCheck(forged, items(forged)).result()
    Traceback (most recent call last):
    ...
    ledger.errors.InvalidSignature: submission 2 (event.x): the signature by 'k' does not verify
    """

    def __init__(
        self,
        submissions: Sequence[Submission],
        items: Sequence[tuple[bytes, bytes]],
        *,
        derive: Derive | None = None,
    ) -> None:
        if len(submissions) != len(items):
            raise ValueError("one (canonical body, public key) pair per submission")
        global _issued
        self._submissions = list(submissions)
        self._bodies = {id(s): body for s, (body, _) in zip(submissions, items, strict=True)}
        pool = self._pool = _shared_pool()
        self._number = _issued
        _issued += len(items)
        self._chunks: list[list[tuple[bytes, str, bytes, bytes]]] = []
        self._futures: list[Future[tuple[int | None, list[Any]]] | None] = []
        for lo in range(0, len(items), _TASK):
            chunk = [
                (raw_key, s.kind, body, s.signature)
                for s, (body, raw_key) in zip(
                    submissions[lo : lo + _TASK], items[lo : lo + _TASK], strict=True
                )
            ]
            self._chunks.append(chunk)
            try:
                future = pool.submit(verify_chunk, chunk, derive, self._number + lo)
            except BrokenExecutor:
                _discard_pool(pool)
                future = None  # checked here, in result()
            self._futures.append(future)

    def covers(self, submissions: Sequence[Submission], bodies: Sequence[bytes]) -> bool:
        """Whether every one of ``submissions`` (the same objects) is being checked here,
        over the canonical ``bodies`` that are to be stored (a body changed since does not)."""
        return all(
            self._bodies.get(id(s)) == body for s, body in zip(submissions, bodies, strict=True)
        )

    def derived(self, index: int) -> Any:
        """What ``derive`` made of submission ``index`` if its chunk is back; else None.

        None tells the workers that the caller computes it: they skip it, and the
        submissions before it.
        """
        future = self._futures[index // _TASK]
        if (
            future is not None
            and future.done()
            and not future.cancelled()
            and future.exception() is None
        ):
            values = future.result()[1]
            offset = index % _TASK
            if offset < len(values) and values[offset] is not None:
                return values[offset]
        if _overtaken is not None and _pool_pid == os.getpid():
            _overtaken.value = max(_overtaken.value, self._number + index)
        return None

    def result(self) -> None:
        """Wait for the checks; raise :class:`InvalidSignature` naming the first that failed."""
        for chunk, future in enumerate(self._futures):
            bad = self._checked(chunk, future)
            if bad is not None:
                at = chunk * _TASK + bad
                s = self._submissions[at]
                raise InvalidSignature(
                    f"submission {at} ({s.kind}): the signature by {s.key_id!r} does not verify"
                )

    def _checked(
        self, chunk: int, future: Future[tuple[int | None, list[Any]]] | None
    ) -> int | None:
        """The chunk's first bad offset; checked here if its worker died (and a new one is
        started for the next batch)."""
        if future is not None:
            try:
                return future.result()[0]
            except BrokenExecutor:
                _discard_pool(self._pool)
        return verify_chunk(self._chunks[chunk])[0]

    def cancel(self) -> None:
        """Drop the checks not started yet (the batch was refused for another reason)."""
        for future in self._futures:
            if future is not None:
                future.cancel()
