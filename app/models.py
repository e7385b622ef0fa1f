"""Every table, imported in one place for Alembic and metadata.create_all."""

from app.auth.models import ApiKey, User
from app.billing.models import CreditAccount, CreditEntry
from app.core.db import Base
from app.jobs.models import IdempotencyKey, Job, WebhookDelivery
from app.voices.models import Collection, CollectionVoice, UsageEvent, Voice, VoiceSample

__all__ = [
    "ApiKey",
    "Base",
    "Collection",
    "CollectionVoice",
    "CreditAccount",
    "CreditEntry",
    "IdempotencyKey",
    "Job",
    "UsageEvent",
    "User",
    "Voice",
    "VoiceSample",
    "WebhookDelivery",
]
