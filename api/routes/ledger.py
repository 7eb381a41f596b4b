"""The log, for auditors and anyone verifying: checkpoints, entries, proofs, export."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from api.deps import CallerDep, ServicesDep
from api.errors import ProblemError
from ledger.merkle import leaf_hash

router = APIRouter(prefix="/ledger", tags=["ledger"])

MAX_RANGE = 1000


class Proof(BaseModel):
    size: int
    hashes: list[str]
    root: str


class InclusionProof(Proof):
    seq: int
    leaf_hash: str
    checkpoint: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(services: ServicesDep) -> str:
    """The latest signed checkpoint (C2SP tlog-checkpoint, with witness cosignatures)."""
    log = services.tracer.log
    with services.writing():
        if log.signer is not None and log.latest_checkpoint() is None:
            log.checkpoint()
    return log.cosigned_checkpoint()


@router.post("/checkpoint", response_class=PlainTextResponse)
def new_checkpoint(services: ServicesDep, caller: CallerDep) -> str:
    """Sign a checkpoint of the current head (idempotent for an unchanged head; needs a key)."""
    if caller.public:
        raise ProblemError("unauthenticated", "signing a checkpoint on demand needs an API key")
    with services.writing() as tracer:
        tracer.log.checkpoint()
        return tracer.log.cosigned_checkpoint()


@router.get("/entries")
def entries(
    services: ServicesDep,
    start: Annotated[int, Query(ge=0)] = 0,
    end: Annotated[int | None, Query(ge=0)] = None,
) -> list[str]:
    """Canonical entries ``start .. end-1`` as strings (at most 1000)."""
    log = services.tracer.log
    size = len(log)
    end = min(size, start + MAX_RANGE) if end is None else end
    if end - start > MAX_RANGE:
        raise ProblemError("invalid-request", f"ask for at most {MAX_RANGE} entries at a time")
    return [e.raw.decode() for e in log.entries(start, end)]


@router.get("/proofs/inclusion/{seq}")
def inclusion(
    seq: Annotated[int, Path(ge=0, le=2**63 - 1)], services: ServicesDep
) -> InclusionProof:
    """Audit path of entry ``seq`` against the latest checkpoint."""
    log = services.tracer.log
    with services.writing():
        latest = log.store.checkpoint()
        if (latest is None or latest[0] <= seq) and log.signer is not None and seq < len(log):
            log.checkpoint()
            latest = log.store.checkpoint()
    if latest is None or latest[0] <= seq:
        raise ProblemError("out-of-range", f"entry {seq} is not under a signed checkpoint")
    size = latest[0]
    raw = log.entry(seq).raw
    return InclusionProof(
        seq=seq,
        size=size,
        leaf_hash=_b64(leaf_hash(raw)),
        hashes=[_b64(h) for h in log.inclusion_proof(seq, size)],
        root=_b64(log.root(size)),
        checkpoint=log.cosigned_checkpoint(size),
    )


@router.get("/proofs/consistency")
def consistency(
    services: ServicesDep, old: Annotated[int, Query(ge=0)], new: Annotated[int, Query(ge=0)]
) -> Proof:
    """Consistency proof between two tree sizes."""
    log = services.tracer.log
    return Proof(
        size=new,
        hashes=[_b64(h) for h in log.consistency_proof(old, new)],
        root=_b64(log.root(new)),
    )


@router.get("/bundle/{seq}", response_class=PlainTextResponse)
def bundle(seq: Annotated[int, Path(ge=0, le=2**63 - 1)], services: ServicesDep) -> str:
    """A self-contained C2SP tlog-proof of entry ``seq``."""
    with services.writing() as tracer:
        return tracer.log.proof_bundle(seq)


@router.get("/export", response_class=StreamingResponse)
def export(services: ServicesDep) -> StreamingResponse:
    """Every entry up to the latest checkpoint, as NDJSON (stream); the checkpoint is in a header."""
    log = services.tracer.log
    with services.writing():
        if log.signer is not None:
            log.checkpoint()
    signed = log.cosigned_checkpoint()
    size = int(signed.split("\n")[1])

    def lines() -> Iterator[bytes]:
        for chunk in log.iter_raw(size):
            yield b"".join(raw + b"\n" for raw in chunk)

    headers = {"X-Checkpoint": base64.b64encode(signed.encode()).decode()}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


@router.get("/witnesses/{size}")
def cosignatures(
    size: Annotated[int, Path(ge=0, le=2**63 - 1)], services: ServicesDep
) -> dict[str, str]:
    """Witness cosignatures held for the checkpoint at ``size``."""
    return services.tracer.log.store.cosignatures(size)
