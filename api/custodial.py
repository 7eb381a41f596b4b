"""Custodial signing keys: the service keeps an Ed25519 key for organisations that hold none.

Private keys are encrypted at rest with AES-256-GCM under a key derived from
``SUYUAN_SECRET_KEY`` (HKDF-SHA256), the key id bound in as associated data so
that a ciphertext cannot be moved to another key's row.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger import note
from schemas.tables import CustodialKeyRow

__all__ = ["CustodialKeyError", "CustodialKeys"]

_INFO = b"suyuan custodial signing keys v1"


class CustodialKeyError(Exception):
    """Raised when a custodial key is missing or cannot be decrypted (wrong secret)."""


class CustodialKeys:
    def __init__(self, engine: Engine, secret: str) -> None:
        self.engine = engine
        CustodialKeyRow.metadata.create_all(engine, tables=[CustodialKeyRow.__table__])  # type: ignore[attr-defined]
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret.encode()
        )
        self._aead = AESGCM(key)

    def create(self, actor_id: str) -> note.Signer:
        """A new key for ``actor_id``, stored encrypted; register its verifier on the log."""
        signer = note.Signer.generate(actor_id)
        raw = signer.private_key.private_bytes_raw()
        nonce = os.urandom(12)
        row = CustodialKeyRow(
            key_id=signer.key_id,
            actor_id=actor_id,
            nonce=nonce,
            ciphertext=self._aead.encrypt(nonce, raw, signer.key_id.encode()),
            created_at=datetime.now(UTC),
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
        return signer

    def signer_for(self, actor_id: str) -> note.Signer:
        """The newest custodial key of an actor."""
        with Session(self.engine) as session:
            query = (
                select(CustodialKeyRow)
                .where(CustodialKeyRow.actor_id == actor_id)
                .order_by(CustodialKeyRow.created_at.desc())  # type: ignore[attr-defined]
            )
            row = session.exec(query).first()
        if row is None:
            raise CustodialKeyError(f"the service holds no signing key for {actor_id!r}")
        try:
            raw = self._aead.decrypt(row.nonce, row.ciphertext, row.key_id.encode())
        except InvalidTag as exc:
            raise CustodialKeyError(
                "the custodial key cannot be decrypted with this secret"
            ) from exc
        return note.Signer.from_private_key(actor_id, Ed25519PrivateKey.from_private_bytes(raw))
