"""job ratings: the owner's 1-5 rating of a speech job

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 23:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.core.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rated_at", app.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("rated_at")
        batch.drop_column("rating")
