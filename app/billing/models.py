from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, utcnow


class CreditAccount(Base):
    """Balances. `held` is reserved out of regular + permanent; available = regular + permanent - held."""

    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("regular >= 0", name="regular_nonnegative"),
        CheckConstraint("permanent >= 0", name="permanent_nonnegative"),
        CheckConstraint("held >= 0", name="held_nonnegative"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    regular: Mapped[int] = mapped_column(Integer, default=0)
    permanent: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    monthly_allowance: Mapped[int] = mapped_column(Integer, default=0)
    reset_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditEntry(Base):
    """Append-only ledger. sum(amount) == regular + permanent and sum(held_delta) == held.

    Each job has at most one hold (UNIQUE(job_id, kind)) and at most one settlement,
    capture or release (UNIQUE(settles_job_id)), which makes both idempotent and exclusive.
    """

    __tablename__ = "credit_entries"
    __table_args__ = (UniqueConstraint("job_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    settles_job_id: Mapped[int | None] = mapped_column(Integer, unique=True, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # grant | hold | capture | release | reset
    amount: Mapped[int] = mapped_column(Integer, default=0)
    regular_delta: Mapped[int] = mapped_column(Integer, default=0)
    permanent_delta: Mapped[int] = mapped_column(Integer, default=0)
    held_delta: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
