"""Open a log store from a database URL: ``sqlite:///PATH`` (or a bare path) or ``postgresql://``."""

from __future__ import annotations

from ledger.errors import LedgerError
from ledger.store import LogStore

__all__ = ["open_store"]


def open_store(url: str) -> LogStore:
    """The store for ``url``; the backends are imported only when used."""
    if url.startswith(("postgresql://", "postgres://")):
        from ledger.postgres_store import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]
    elif "://" in url:
        raise LedgerError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://")
    from ledger.sqlite_store import SQLiteStore

    return SQLiteStore(url)
