"""Migrations apply on SQLite and Postgres, and the models match them (no autogenerate drift)."""

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from app.core.migrate import alembic_config

EXPECTED_TABLES = {
    "users",
    "api_keys",
    "voices",
    "voice_samples",
    "collections",
    "collection_voices",
    "jobs",
    "credit_accounts",
    "credit_entries",
    "usage_events",
    "idempotency_keys",
    "webhook_deliveries",
}


def _round_trip(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = sa.create_engine(url)
    try:
        assert set(sa.inspect(engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        engine.dispose()
    command.check(cfg)  # raises when the models and migrations disagree
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migrations_on_postgres(postgres_url: str) -> None:
    _round_trip(postgres_url)
