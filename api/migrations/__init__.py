"""Alembic migrations of suyuan's tables (projections, API keys, custodial keys, the log)."""
