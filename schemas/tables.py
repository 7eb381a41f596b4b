"""Projection tables: the current state of actors, items, handovers and events, as SQLModel tables.

Every row is a pure function of the log (``trace.projections`` rebuilds them
from the log alone); ``projection_state.seq`` says how much of the log they
reflect. Lists and per-element masses are stored as JSON text so that SQLite
and PostgreSQL hold the same rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "ActorRow",
    "ApiKeyRow",
    "CustodialKeyRow",
    "EventItemRow",
    "EventRow",
    "HandoverRow",
    "ItemRow",
    "ProjectionStateRow",
]


class ActorRow(SQLModel, table=True):
    __tablename__ = "trace_actors"

    id: str = Field(primary_key=True, max_length=64)
    name: str
    role: str = Field(index=True)
    region: str = Field(index=True)
    registered_seq: int


class ItemRow(SQLModel, table=True):
    __tablename__ = "trace_items"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(index=True)
    status: str = Field(index=True)
    eu_status: str
    custodian: str = Field(index=True)
    owner: str = Field(index=True)
    producer: str = Field(index=True)
    head: str
    last_time: datetime
    region: str = Field(index=True)
    mass_kg: float | None = None
    content_json: str = "{}"
    chemistry: str | None = None
    energy_kwh: float | None = None
    material: str | None = None
    vin: str | None = Field(default=None, index=True)
    parent: str | None = None
    children_json: str = "[]"
    original: str | None = None
    successor: str | None = None
    pending_handover: str | None = None
    disputed: bool = False
    soh_pct: float | None = None
    grade: str | None = None
    sources_json: str = "[]"
    updated_seq: int


class HandoverRow(SQLModel, table=True):
    __tablename__ = "trace_handovers"

    id: str = Field(primary_key=True, max_length=120)
    sender: str = Field(index=True)
    receiver: str = Field(index=True)
    items_json: str
    transfer_ownership: bool
    status: str = Field(index=True)
    created: datetime
    disputed: bool = False
    closed_by: str | None = None
    updated_seq: int


class EventRow(SQLModel, table=True):
    __tablename__ = "trace_events"
    __table_args__ = (
        UniqueConstraint("actor", "idempotency_key", name="trace_events_idempotency"),
    )

    seq: int = Field(primary_key=True)
    event_id: str = Field(unique=True, max_length=120)
    type: str = Field(index=True)
    actor: str = Field(index=True)
    region: str
    event_time: datetime = Field(index=True)
    recorded_at: datetime
    idempotency_key: str = Field(max_length=128)
    late_working_days: int | None = None
    body_json: str


class EventItemRow(SQLModel, table=True):
    """Which events touched which item, in log order: an item's history and hash chain."""

    __tablename__ = "trace_event_items"
    __table_args__ = (Index("trace_event_items_item_seq", "item", "seq"),)

    seq: int = Field(primary_key=True)
    item: str = Field(primary_key=True, max_length=64)
    event_id: str
    prev: str | None = None


class ProjectionStateRow(SQLModel, table=True):
    __tablename__ = "trace_projection_state"

    id: int = Field(primary_key=True)
    seq: int


class ApiKeyRow(SQLModel, table=True):
    """An API key: shown once, stored as a SHA-256 of its secret part."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    actor_id: str | None = Field(default=None, index=True, max_length=64)  # None: an admin key
    label: str = ""
    secret_sha256: str = Field(max_length=64)
    created_at: datetime
    revoked_at: datetime | None = None


class CustodialKeyRow(SQLModel, table=True):
    """A signing key the service holds for an actor without one, encrypted at rest (AES-GCM)."""

    __tablename__ = "custodial_keys"

    key_id: str = Field(primary_key=True, max_length=200)
    actor_id: str = Field(index=True, max_length=64)
    nonce: bytes
    ciphertext: bytes
    created_at: datetime
