"""Administration: organisations, their signing keys and their API keys (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import AdminDep, CallerDep, ServicesDep
from api.errors import ProblemError
from api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from schemas.actors import Actor

router = APIRouter(tags=["actors"])


class ActorCreate(Actor):
    """An organisation to register, with the verifier keys it signs with."""

    verifier_keys: list[str] = Field(default_factory=list, max_length=10)
    custodial_key: bool = Field(
        default=False, description="let the service hold a signing key for it (encrypted at rest)"
    )


class ActorCreated(BaseModel):
    actor: Actor
    api_key: str = Field(description="shown once; store it now")
    custodial_key_id: str | None = None


class KeyAdd(BaseModel):
    verifier_key: str = Field(min_length=10, max_length=300)


class Revocation(BaseModel):
    reason: str = Field(min_length=1, max_length=300)


class ApiKeyIssued(BaseModel):
    id: str
    actor_id: str | None
    api_key: str = Field(description="shown once; store it now")


def _actor(services: ServicesDep, actor_id: str) -> Actor:
    actor = services.tracer.world.actor(actor_id)
    if actor is None:
        raise ProblemError("unknown-actor", f"no organisation {actor_id!r}")
    return actor


@router.post("/actors", status_code=status.HTTP_201_CREATED)
def register_actor(body: ActorCreate, services: ServicesDep, _admin: AdminDep) -> ActorCreated:
    """Register an organisation, its signing keys, and issue its first API key."""
    actor = Actor(id=body.id, name=body.name, role=body.role, region=body.region)
    keys = list(body.verifier_keys)
    custodial_id = None
    with services.writing() as tracer:
        if body.custodial_key:
            signer = services.custodial.create(actor.id)
            keys.append(signer.verifier.to_string())
            custodial_id = signer.key_id
        tracer.register_actor(actor, keys)
    issued = services.keys.issue(actor.id, label="first key")
    return ActorCreated(actor=actor, api_key=issued.token, custodial_key_id=custodial_id)


@router.get("/actors")
def list_actors(
    services: ServicesDep,
    caller: CallerDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Page[Actor]:
    """Registered organisations, by id."""
    if caller.public:
        raise ProblemError("unauthenticated", "listing organisations needs an API key")
    after = decode_cursor(cursor)
    actors = sorted(services.tracer.world.actors.values(), key=lambda a: a.id)
    if after is not None:
        actors = [a for a in actors if a.id > str(after)]
    page = actors[:limit]
    more = len(actors) > limit
    return Page[Actor](data=page, next_cursor=encode_cursor(page[-1].id) if more else None)


@router.get("/actors/{actor_id}")
def get_actor(actor_id: str, services: ServicesDep, caller: CallerDep) -> Actor:
    """One organisation."""
    if caller.public:
        raise ProblemError("unauthenticated", "organisations are visible to API-key holders")
    return _actor(services, actor_id)


@router.post("/actors/{actor_id}/keys", status_code=status.HTTP_201_CREATED)
def add_signing_key(
    actor_id: str, body: KeyAdd, services: ServicesDep, _admin: AdminDep
) -> dict[str, str]:
    """Register another signing key (rotation: add the new key, then revoke the old)."""
    _actor(services, actor_id)
    with services.writing() as tracer:
        tracer.add_key(actor_id, body.verifier_key)
    return {"actor_id": actor_id, "verifier_key": body.verifier_key}


@router.post("/signing-keys/{key_id}/revoke")
def revoke_signing_key(
    key_id: str, body: Revocation, services: ServicesDep, _admin: AdminDep
) -> dict[str, object]:
    """Revoke a signing key: its earlier events stay valid, later ones are refused."""
    with services.writing() as tracer:
        receipt = tracer.log.revoke_key(key_id, reason=body.reason)
    return {"key_id": key_id, "revoked_at_entry": receipt.seq}


@router.post("/actors/{actor_id}/api-keys", status_code=status.HTTP_201_CREATED)
def issue_api_key(actor_id: str, services: ServicesDep, _admin: AdminDep) -> ApiKeyIssued:
    """Issue an API key for an organisation (shown once)."""
    _actor(services, actor_id)
    issued = services.keys.issue(actor_id)
    return ApiKeyIssued(id=issued.id, actor_id=actor_id, api_key=issued.token)


@router.post("/api-keys/{key_id}/rotate", status_code=status.HTTP_201_CREATED)
def rotate_api_key(key_id: str, services: ServicesDep, _admin: AdminDep) -> ApiKeyIssued:
    """Revoke an API key and issue its replacement for the same holder."""
    issued = services.keys.rotate(key_id)
    if issued is None:
        raise ProblemError("not-found", f"no active API key {key_id!r}")
    return ApiKeyIssued(id=issued.id, actor_id=issued.actor_id, api_key=issued.token)


@router.post("/api-keys/{key_id}/revoke")
def revoke_api_key(key_id: str, services: ServicesDep, _admin: AdminDep) -> dict[str, str]:
    """Revoke an API key at once."""
    if not services.keys.revoke(key_id):
        raise ProblemError("not-found", f"no active API key {key_id!r}")
    return {"id": key_id, "status": "revoked"}
