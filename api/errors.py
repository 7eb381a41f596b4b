"""RFC 9457 problem details: every error the service returns, with a stable ``type`` per kind.

Domain and ledger errors are mapped here, in one place; routes just raise.
``type`` is ``/problems/<slug>`` on the service itself, where a short page
describes the problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import errors as ledger_errors
from schemas.errors import SchemaError
from trace import errors as trace_errors

__all__ = ["PROBLEMS", "Problem", "ProblemError", "install_problem_handlers", "problem_response"]

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class Problem:
    slug: str
    title: str
    status: int


PROBLEMS: dict[str, Problem] = {
    p.slug: p
    for p in (
        Problem("invalid-request", "The request is malformed", 422),
        Problem("invalid-event", "The event is not valid", 422),
        Problem("invalid-code", "Not a valid GB/T 34014 code or lot id", 422),
        Problem("custody-refused", "A custody rule refuses the event", 409),
        Problem("mass-balance", "Outputs weigh more than inputs allow", 409),
        Problem("stale-chain", "The event was built on a stale view of the item", 409),
        Problem("duplicate-event", "The event is already recorded", 409),
        Problem("conflict", "The log kept moving; retry", 409),
        Problem("unknown-actor", "No such organisation", 404),
        Problem("not-found", "No such resource", 404),
        Problem("invalid-signature", "The signature does not verify", 422),
        Problem("invalid-key", "The signing key is unknown, revoked or malformed", 422),
        Problem("invalid-proof", "The proof does not verify", 422),
        Problem("out-of-range", "Outside the log", 404),
        Problem("unauthenticated", "An API key is required", 401),
        Problem("forbidden", "Not allowed for this key", 403),
        Problem("too-large", "The request body is too large", 413),
        Problem("unsupported-media-type", "Send application/json", 415),
        Problem("rate-limited", "Too many requests for this key", 429),
        Problem("timeout", "The request took too long", 504),
        Problem("internal", "Something went wrong on our side", 500),
    )
}


class ProblemError(Exception):
    """Raised by routes and dependencies to answer with a problem of kind ``slug``."""

    def __init__(self, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.extra = extra


def problem_response(
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    problem = PROBLEMS[slug]
    body: dict[str, Any] = {
        "type": f"/problems/{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=problem.status, media_type=MEDIA_TYPE, headers=headers)


def _classify(exc: Exception) -> tuple[str, dict[str, Any]]:
    """The problem slug (and extra members) for a domain or ledger error."""
    if isinstance(exc, trace_errors.MassBalanceError):
        return "mass-balance", {"rule": exc.rule}
    if isinstance(exc, trace_errors.CustodyError):
        return "custody-refused", {"rule": exc.rule}
    if isinstance(exc, trace_errors.ChainError):
        return "stale-chain", {}
    if isinstance(exc, trace_errors.DuplicateEvent):
        return "duplicate-event", {}
    if isinstance(exc, trace_errors.Conflict | ledger_errors.StaleHead):
        return "conflict", {}
    if isinstance(exc, trace_errors.UnknownActor):
        return "unknown-actor", {}
    if isinstance(exc, trace_errors.UnknownItem):
        return "not-found", {}
    if isinstance(exc, trace_errors.InvalidEvent):
        message = str(exc)
        if "signature" in message:
            return "invalid-signature", {"field": exc.field}
        if "revoked" in message or "not registered" in message:
            return "invalid-key", {"field": exc.field}
        return "invalid-event", {"field": exc.field} if exc.field else {}
    if isinstance(exc, ledger_errors.InvalidSignature):
        return "invalid-signature", {}
    if isinstance(exc, ledger_errors.SignerKeyError | ledger_errors.InvalidKey):
        return "invalid-key", {}
    if isinstance(exc, ledger_errors.InvalidProof):
        return "invalid-proof", {}
    if isinstance(exc, ledger_errors.OutOfRange):
        return "out-of-range", {}
    if isinstance(exc, SchemaError):
        return "invalid-code", {}
    return "invalid-request", {}


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.slug, exc.detail, instance=request.url.path, **exc.extra)

    @app.exception_handler(trace_errors.TraceError)
    @app.exception_handler(ledger_errors.LedgerError)
    @app.exception_handler(SchemaError)
    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        slug, extra = _classify(exc)
        return problem_response(slug, str(exc), instance=request.url.path, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem_response("invalid-request", detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {400: "invalid-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                413: "too-large", 415: "unsupported-media-type", 429: "rate-limited",
                }.get(exc.status_code)  # fmt: skip
        headers = dict(exc.headers) if exc.headers else None
        if slug is None:
            body = {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code,
                    "detail": str(exc.detail)}  # fmt: skip
            return JSONResponse(
                body, status_code=exc.status_code, media_type=MEDIA_TYPE, headers=headers
            )
        return problem_response(slug, str(exc.detail), instance=request.url.path, headers=headers)

    @app.exception_handler(sqlalchemy_exc.DataError)
    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value (a NUL byte, a number out of its range): bad input.
        return problem_response(
            "invalid-request",
            "a value in the request cannot be stored or looked up",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return problem_response(
            "internal", "an unexpected error was logged", instance=request.url.path
        )
