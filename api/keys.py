"""API keys: random, shown once, stored as a SHA-256 of their secret; rotated and revoked.

A key reads ``sy_<id>_<secret>``: the id finds the row, the secret (32 random
bytes, base32) is compared with ``hmac.compare_digest`` against its stored
hash. Keys carry 256 bits of entropy, so a plain SHA-256 is the right hash
(no password-stretching needed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from schemas.tables import ApiKeyRow

__all__ = ["IssuedKey", "KeyStore"]

_PREFIX = "sy"


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``token`` is shown to its holder once and never stored."""

    id: str
    actor_id: str | None
    token: str


class KeyStore:
    """API keys in the service's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ApiKeyRow.metadata.create_all(engine, tables=[ApiKeyRow.__table__])  # type: ignore[attr-defined]

    def issue(self, actor_id: str | None, *, label: str = "") -> IssuedKey:
        """A new key for an actor (``None``: an administrator's key)."""
        key_id = secrets.token_hex(8)
        secret = base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()
        row = ApiKeyRow(
            id=key_id,
            actor_id=actor_id,
            label=label,
            secret_sha256=_secret_hash(secret),
            created_at=datetime.now(UTC),
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
        return IssuedKey(key_id, actor_id, f"{_PREFIX}_{key_id}_{secret}")

    def authenticate(self, token: str) -> ApiKeyRow | None:
        """The key's row if ``token`` is a valid, unrevoked key; else ``None``."""
        parts = token.split("_")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        _, key_id, secret = parts
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        # Timing-safe: the comparison does not reveal how much of the secret matched.
        if not hmac.compare_digest(row.secret_sha256, _secret_hash(secret)):
            return None
        return row

    def revoke(self, key_id: str) -> bool:
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            session.commit()
            return True

    def rotate(self, key_id: str) -> IssuedKey | None:
        """Revoke a key and issue its replacement for the same holder."""
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        self.revoke(key_id)
        return self.issue(row.actor_id, label=row.label)

    def list(self, actor_id: str | None = None) -> list[ApiKeyRow]:
        with Session(self.engine) as session:
            query = select(ApiKeyRow)
            if actor_id is not None:
                query = query.where(ApiKeyRow.actor_id == actor_id)
            return list(session.exec(query).all())
