"""The FastAPI application factory (``create_app``): the service's one composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_problem_handlers
from api.middleware import BodyLimitMiddleware, TimeoutMiddleware
from api.routes import (
    admin,
    analytics,
    bulk,
    events,
    handovers,
    health,
    items,
    labels,
    ledger,
    operations,
    pages,
    passport,
)
from api.services import Services
from api.settings import Settings, get_settings

__all__ = ["create_app"]

API_VERSION = "v1"


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The service for ``settings`` (default: the environment); ``services`` for tests."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or Services.start(settings)
        try:
            yield
        finally:
            if own:
                app.state.services.close()

    app = FastAPI(
        title="suyuan",
        version="0.1.0",
        summary="Traceability for retired power batteries and scrap metal",
        description=(
            "Signed custody events on a verifiable Merkle log. Errors are RFC 9457 "
            "problem+json; lists use cursor pagination; write endpoints need an API key."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.cors_origins:  # CORS is off unless origins are configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    app.include_router(health.router)
    app.include_router(passport.public_router)  # /p/{code}: what a phone opens
    app.include_router(pages.router)  # /scan, /dashboard, /work and /static/...: the web pages
    for router in (
        admin.router,
        items.router,
        events.router,
        handovers.router,
        operations.router,
        bulk.router,
        ledger.router,
        analytics.router,
        labels.router,
        passport.router,
    ):
        app.include_router(router, prefix=f"/{API_VERSION}")
    return app
