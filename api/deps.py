"""FastAPI dependencies: the services, the caller (principal) and role checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.errors import ProblemError
from api.services import Services
from api.settings import Settings
from schemas.actors import Actor, Role

__all__ = [
    "AdminDep",
    "CallerDep",
    "Principal",
    "ServicesDep",
    "SettingsDep",
    "WriterDep",
    "get_reader",
    "get_services",
    "services_of",
]


def services_of(request: Request) -> Services:
    """The process's services (what :data:`ServicesDep` gives)."""
    services: Services = request.app.state.services
    return services


# Dependencies that do no I/O are coroutines: FastAPI runs plain functions in a thread.
async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an administrator, an organisation, or the public (no key)."""

    key_id: str | None
    actor: Actor | None
    admin: bool = False

    @property
    def public(self) -> bool:
        return self.key_id is None

    @property
    def role(self) -> Role | None:
        return None if self.actor is None else self.actor.role

    def is_auditor(self) -> bool:
        return self.role is Role.AUDITOR


PUBLIC = Principal(None, None)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ProblemError("unauthenticated", "use 'Authorization: Bearer <API key>'")
        return value.strip()
    return request.headers.get("x-api-key")


def get_caller(request: Request, services: ServicesDep) -> Principal:
    """The principal behind the request's API key; rate-limited per key (or per client address)."""
    # Other workers (processes) may have appended: catch up before answering, so a key or
    # an item created through another worker is seen.
    services.sync()
    token = _token(request)
    principal = PUBLIC
    if token is not None:
        row = services.keys.authenticate(token)
        if row is None:
            raise ProblemError("unauthenticated", "the API key is unknown or revoked")
        actor = None
        if row.actor_id is not None:
            actor = services.tracer.world.actor(row.actor_id)
            if actor is None:
                raise ProblemError(
                    "unauthenticated", f"the key's organisation {row.actor_id!r} is gone"
                )
        principal = Principal(row.id, actor, admin=row.actor_id is None)
    _limit(services, request, principal)
    return principal


def _limit(services: Services, request: Request, principal: Principal) -> None:
    bucket = principal.key_id or f"ip:{request.client.host if request.client else '?'}"
    wait = services.limiter.allow(bucket)
    if wait is not None:
        raise ProblemError(
            "rate-limited", f"slow down: retry in {wait:.1f} s", retry_after=round(wait, 1)
        )


CallerDep = Annotated[Principal, Depends(get_caller)]


async def get_reader(request: Request, services: Services) -> Principal:
    """:func:`get_caller` for routes anyone may read: a caller without a key costs no thread.

    Such routes bring the engine up to date themselves (:meth:`Services.sync`).
    """
    if _token(request) is not None:
        return await run_in_threadpool(get_caller, request, services)
    _limit(services, request, PUBLIC)
    return PUBLIC


def require_admin(caller: CallerDep) -> Principal:
    if caller.public:
        raise ProblemError("unauthenticated", "this needs an administrator's API key")
    if not caller.admin:
        raise ProblemError("forbidden", "only administrators manage organisations and keys")
    return caller


AdminDep = Annotated[Principal, Depends(require_admin)]


def require_writer(caller: CallerDep) -> Principal:
    """An organisation that may record events (auditors and administrators write none)."""
    if caller.public:
        raise ProblemError("unauthenticated", "recording events needs an organisation's API key")
    if caller.actor is None:
        raise ProblemError(
            "forbidden", "administrators manage the service; organisations record events"
        )
    if caller.is_auditor():
        raise ProblemError("forbidden", "auditors read everything and write nothing")
    return caller


WriterDep = Annotated[Principal, Depends(require_writer)]
