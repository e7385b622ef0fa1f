"""The credits ledger: grant, hold, capture, release, reset — each an append-only entry.

Balances move only through conditional UPDATEs (no SELECT … FOR UPDATE), so two
requests racing for the last credits cannot both win, on SQLite or Postgres.
Holds and settlements are keyed by job, which makes retries of any step harmless.

Monthly reset: when `reset_at` has passed, regular credits become `monthly_allowance`
(permanent ones never expire) and `reset_at` moves on by calendar months until it is in
the future. It happens lazily when a balance is read or credits are held, and in a
periodic pass (`apply_due_resets`). Each reset is a compare-and-set on (reset_at,
regular), so a period is reset once however many processes try, and the `reset` entry
records the exact change (sum(amount) == regular + permanent holds throughout).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.billing.models import CreditAccount, CreditEntry
from app.core.db import affected_rows, utcnow
from app.core.errors import InsufficientCredits, InvalidInput
from app.jobs.models import Job


@dataclass(frozen=True)
class Balance:
    regular: int
    permanent: int
    held: int
    reset_at: datetime | None

    @property
    def total(self) -> int:
        return self.regular + self.permanent

    @property
    def available(self) -> int:
        return self.regular + self.permanent - self.held


def ensure_account(session: Session, user_id: int) -> CreditAccount:
    account = session.get(CreditAccount, user_id)
    if account is None:
        account = CreditAccount(user_id=user_id)
        session.add(account)
        session.flush()
    return account


def balance(session: Session, user_id: int) -> Balance:
    """The user's balance, after any monthly reset that has fallen due."""
    query = select(
        CreditAccount.regular, CreditAccount.permanent, CreditAccount.held, CreditAccount.reset_at
    ).where(CreditAccount.user_id == user_id)
    row = session.execute(query).one_or_none()
    if row is None:
        return Balance(0, 0, 0, None)
    if row.reset_at is not None and row.reset_at <= utcnow() and reset_if_due(session, user_id):
        row = session.execute(query).one()
    return Balance(row.regular, row.permanent, row.held, row.reset_at)


def grant(
    session: Session, user_id: int, amount: int, *, permanent: bool = False, note: str | None = None
) -> None:
    if amount <= 0:
        raise InvalidInput("Grant amount must be positive")
    ensure_account(session, user_id)
    column = CreditAccount.permanent if permanent else CreditAccount.regular
    session.execute(
        update(CreditAccount)
        .where(CreditAccount.user_id == user_id)
        .values({column: column + amount, CreditAccount.updated_at: utcnow()})
    )
    session.add(
        CreditEntry(
            user_id=user_id,
            kind="grant",
            amount=amount,
            permanent_delta=amount if permanent else 0,
            regular_delta=0 if permanent else amount,
            note=note,
        )
    )
    session.flush()
    session.expire_all()


def _insert_entry_once(session: Session, **values: object) -> bool:
    """Insert a ledger entry unless a unique key says it already exists; True when inserted."""
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CreditEntry).values(
        created_at=utcnow(), **values
    )
    # rowcount is unreliable with ON CONFLICT on psycopg; a returned row is not.
    inserted = session.execute(stmt.on_conflict_do_nothing().returning(CreditEntry.id)).first()
    return inserted is not None


def hold(session: Session, user_id: int, job_id: int, amount: int) -> None:
    """Reserve `amount` for a job, or raise InsufficientCredits. Idempotent per job."""
    if amount < 0:
        raise InvalidInput("Hold amount must not be negative")
    ensure_account(session, user_id)
    if amount == 0:
        return
    reset_if_due(session, user_id)
    available = CreditAccount.regular + CreditAccount.permanent - CreditAccount.held
    if _hold_exists(session, job_id):
        return
    result = session.execute(
        update(CreditAccount)
        .where(CreditAccount.user_id == user_id, available >= amount)
        .values(held=CreditAccount.held + amount, updated_at=utcnow())
    )
    if affected_rows(result) != 1:
        session.expire_all()
        raise InsufficientCredits(required=amount, available=max(balance(session, user_id).available, 0))
    if not _insert_entry_once(session, user_id=user_id, job_id=job_id, kind="hold", held_delta=amount):
        # A concurrent hold for the same job won: undo ours.
        session.execute(
            update(CreditAccount)
            .where(CreditAccount.user_id == user_id)
            .values(held=CreditAccount.held - amount)
        )
    session.expire_all()


def _hold_exists(session: Session, job_id: int) -> bool:
    holds = session.scalar(
        select(func.count())
        .select_from(CreditEntry)
        .where(CreditEntry.job_id == job_id, CreditEntry.kind == "hold")
    )
    return bool(holds)


def _held_for(session: Session, job_id: int) -> tuple[int, int] | None:
    row = session.execute(
        select(CreditEntry.user_id, CreditEntry.held_delta).where(
            CreditEntry.job_id == job_id, CreditEntry.kind == "hold"
        )
    ).one_or_none()
    return None if row is None else (row.user_id, row.held_delta)


def capture(session: Session, job_id: int, amount: int | None = None) -> int:
    """Spend a job's hold (all of it, or `amount` ≤ the hold, releasing the rest).

    Regular credits are spent before permanent ones. Returns credits spent; 0 when the
    job has no hold or was already settled (capture and release are mutually exclusive).
    """
    held = _held_for(session, job_id)
    if held is None:
        return 0
    user_id, held_amount = held
    spend = held_amount if amount is None else max(0, min(amount, held_amount))
    account = balance(session, user_id)
    from_regular = min(account.regular, spend)
    from_permanent = spend - from_regular
    if not _insert_entry_once(
        session,
        user_id=user_id,
        job_id=job_id,
        settles_job_id=job_id,
        kind="capture",
        amount=-spend,
        regular_delta=-from_regular,
        permanent_delta=-from_permanent,
        held_delta=-held_amount,
    ):
        return 0
    # One UPDATE: every right-hand side sees the pre-update row on SQLite and Postgres.
    session.execute(
        update(CreditAccount)
        .where(CreditAccount.user_id == user_id)
        .values(
            held=CreditAccount.held - held_amount,
            regular=case((CreditAccount.regular >= spend, CreditAccount.regular - spend), else_=0),
            permanent=case(
                (CreditAccount.regular >= spend, CreditAccount.permanent),
                else_=CreditAccount.permanent - (spend - CreditAccount.regular),
            ),
            updated_at=utcnow(),
        )
    )
    session.expire_all()
    return spend


def release(session: Session, job_id: int) -> int:
    """Give a job's hold back. Returns credits released; 0 if none or already settled."""
    held = _held_for(session, job_id)
    if held is None:
        return 0
    user_id, held_amount = held
    if not _insert_entry_once(
        session,
        user_id=user_id,
        job_id=job_id,
        settles_job_id=job_id,
        kind="release",
        held_delta=-held_amount,
    ):
        return 0
    session.execute(
        update(CreditAccount)
        .where(CreditAccount.user_id == user_id)
        .values(held=CreditAccount.held - held_amount, updated_at=utcnow())
    )
    session.expire_all()
    return held_amount


def ledger_totals(session: Session, user_id: int) -> tuple[int, int]:
    """(sum of amounts, sum of held deltas): must equal (regular + permanent, held)."""
    row = session.execute(
        select(
            func.coalesce(func.sum(CreditEntry.amount), 0), func.coalesce(func.sum(CreditEntry.held_delta), 0)
        ).where(CreditEntry.user_id == user_id)
    ).one()
    return int(row[0]), int(row[1])


# -- monthly reset ---------------------------------------------------------------------------


def add_month(when: datetime) -> datetime:
    """The same moment one calendar month later (the day is clamped: Jan 31 -> Feb 28/29)."""
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def set_monthly_allowance(
    session: Session, user_id: int, allowance: int, *, reset_at: datetime | None = None
) -> None:
    """Give a user `allowance` regular credits per month, resetting next at `reset_at`
    (default: one month from now). An allowance of 0 with no reset_at stops resets."""
    if allowance < 0:
        raise InvalidInput("Monthly allowance must not be negative")
    ensure_account(session, user_id)
    if reset_at is None and allowance > 0:
        reset_at = add_month(utcnow())
    session.execute(
        update(CreditAccount)
        .where(CreditAccount.user_id == user_id)
        .values(monthly_allowance=allowance, reset_at=reset_at, updated_at=utcnow())
    )
    session.expire_all()


def reset_if_due(session: Session, user_id: int, now: datetime | None = None) -> bool:
    """Apply the monthly reset if `reset_at` has passed; True when this call applied it.

    Regular credits become the allowance, but never less than what in-flight holds need
    beyond the permanent credits, so a job held before the reset can still be captured.
    """
    now = now or utcnow()
    for _ in range(5):  # a concurrent capture or reset changed the row: look again
        row = session.execute(
            select(
                CreditAccount.regular,
                CreditAccount.permanent,
                CreditAccount.held,
                CreditAccount.monthly_allowance,
                CreditAccount.reset_at,
            ).where(CreditAccount.user_id == user_id)
        ).one_or_none()
        if row is None or row.reset_at is None or row.reset_at > now:
            return False
        new_regular = max(row.monthly_allowance, row.held - row.permanent, 0)
        next_reset = row.reset_at
        while next_reset <= now:
            next_reset = add_month(next_reset)
        result = session.execute(
            update(CreditAccount)
            .where(
                CreditAccount.user_id == user_id,
                CreditAccount.reset_at == row.reset_at,
                CreditAccount.regular == row.regular,
            )
            .values(regular=new_regular, reset_at=next_reset, updated_at=now)
        )
        if affected_rows(result) == 1:
            delta = new_regular - row.regular
            session.add(
                CreditEntry(
                    user_id=user_id,
                    kind="reset",
                    amount=delta,
                    regular_delta=delta,
                    note=f"monthly reset due {row.reset_at.isoformat()}",
                )
            )
            session.flush()
            session.expire_all()
            return True
        session.expire_all()
    return False


def apply_due_resets(session: Session, now: datetime | None = None) -> int:
    """Reset every account whose `reset_at` has passed (the periodic pass); returns how many.

    Flushes only: the caller commits (e.g. `with session_scope(settings) as s: apply_due_resets(s)`).
    """
    now = now or utcnow()
    due = session.scalars(
        select(CreditAccount.user_id).where(
            CreditAccount.reset_at.is_not(None), CreditAccount.reset_at <= now
        )
    ).all()
    return sum(1 for user_id in due if reset_if_due(session, user_id, now))


# -- usage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    kind: str
    amount: int
    regular_delta: int
    permanent_delta: int
    held_delta: int
    job_public_id: str | None
    note: str | None
    created_at: datetime


def usage_entries(
    session: Session, user_id: int, *, skip: int = 0, limit: int = 50
) -> tuple[list[LedgerEntry], int]:
    """The user's ledger, newest first, and the total number of entries."""
    total = (
        session.scalar(select(func.count()).select_from(CreditEntry).where(CreditEntry.user_id == user_id))
        or 0
    )
    rows = session.execute(
        select(CreditEntry, Job.public_id)
        .outerjoin(Job, Job.id == CreditEntry.job_id)
        .where(CreditEntry.user_id == user_id)
        .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc())
        .offset(skip)
        .limit(limit)
    ).all()
    entries = [
        LedgerEntry(
            id=e.id,
            kind=e.kind,
            amount=e.amount,
            regular_delta=e.regular_delta,
            permanent_delta=e.permanent_delta,
            held_delta=e.held_delta,
            job_public_id=public,
            note=e.note,
            created_at=e.created_at,
        )
        for e, public in rows
    ]
    return entries, int(total)
