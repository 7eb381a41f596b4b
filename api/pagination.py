"""Cursor pagination: every list answers ``{"data": [...], "next_cursor": str | null}``.

A cursor is the opaque (base64url JSON) key of the last row returned; the next
page starts after it, so pages stay stable while the log grows.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from api.errors import ProblemError

__all__ = ["MAX_LIMIT", "Page", "decode_cursor", "encode_cursor"]

MAX_LIMIT = 500
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


def encode_cursor(key: Any) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ProblemError("invalid-request", "the cursor is not one this service issued") from exc
