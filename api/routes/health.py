"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def health(services: ServicesDep) -> dict[str, object]:
    """The service is up; the log's size and the projections' position."""
    head = services.tracer.log.head()
    return {"status": "ok", "log_size": head.size, "root": head.root.hex()}
