"""The first schema: the log's tables (append-only, with their triggers) and the projections.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlmodel import SQLModel

import schemas.tables  # noqa: F401  (registers the tables)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = [
    "trace_actors",
    "trace_items",
    "trace_handovers",
    "trace_events",
    "trace_event_items",
    "trace_projection_state",
    "api_keys",
    "custodial_keys",
]


def upgrade() -> None:
    bind = op.get_bind()
    # The log's own DDL (tables and the triggers that refuse UPDATE and DELETE) lives with
    # its store; it is idempotent, so a database created before migrations upgrades too.
    if bind.dialect.name == "sqlite":
        from ledger.sqlite_store import ledger_ddl
    else:
        from ledger.postgres_store import ledger_ddl
    # On the driver's own cursor: its SQL holds '%' that must not be read as placeholders.
    cursor = bind.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    for statement, params in ledger_ddl():
        if params is None:
            cursor.execute(statement)
        else:
            cursor.execute(statement, params)
    metadata = SQLModel.metadata
    metadata.create_all(bind, tables=[metadata.tables[name] for name in _TABLES])


def downgrade() -> None:
    metadata = SQLModel.metadata
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(_TABLES)])
