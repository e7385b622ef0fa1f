"""Webhooks: a signed JSON POST to a job's `callback_url` once the job reaches its final state.

Events: `speech.completed`, `speech.failed`, `voice.completed`, `voice.failed` (clone jobs),
`job.completed` / `job.failed` for other kinds. The body is

    {"id": "evt_<delivery>", "type": <event>, "created_at": ..., "data": {"job_id", "kind",
     "status", "voice_id", "voice_status", "output_url", "duration", "error", ...}}

signed with HMAC-SHA256 over f"{timestamp}.{body}" using the server secret:
`X-Chorus-Timestamp: <unix seconds>` and `X-Chorus-Signature: sha256=<hex>` (see `verify`).

One `webhook_deliveries` row per (job, event) records every attempt: the attempt count,
the last status code or error, and when the next attempt is due. Attempts run on the
workers (RQ, with `enqueue_in` for the backoff) or, embedded, on a small thread pool
with timers; up to MAX_ATTEMPTS with exponential backoff. The URL is checked with the
SSRF rules at request time (`check_callback_url`) and again at every attempt, and
redirects are not followed. `redeliver_due` re-drives attempts whose timer was lost
(a restarted process); the reconciler may call it.

The listener is added to `app.jobs.service.final_state_listeners` when this module is
imported; `install(settings)` tells it which settings (database) to use in this process:
`create_app` calls it, and so must every worker process that runs jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core import fetch
from app.core.config import Settings, get_settings
from app.core.db import affected_rows, after_commit, session_scope, utcnow
from app.core.errors import DomainError
from app.jobs.models import FINAL_STATES, JOB_COMPLETED, Job, WebhookDelivery
from app.jobs.service import final_state_listeners
from app.jobs.tasks import find_task

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 10.0  # waits of 10, 20, 40 and 80 s between the five attempts
TOLERANCE_SECONDS = 300
TIMESTAMP_HEADER = "X-Chorus-Timestamp"
SIGNATURE_HEADER = "X-Chorus-Signature"
RQ_ID_PREFIX = "webhook-"

_settings: Settings | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_timers: set[threading.Timer] = set()
_redis_clients: dict[str, Any] = {}


def install(settings: Settings | None) -> None:
    """Use these settings for webhooks in this process (create_app and workers call it); None stops."""
    global _settings
    _settings = settings


def _current_settings() -> Settings:
    return _settings or get_settings()


# -- request time ----------------------------------------------------------------------------


def check_callback_url(url: str | None, settings: Settings, *, what: str = "callback_url") -> str | None:
    """None for no callback; else the URL, checked with the SSRF rules (InvalidInput → 400)."""
    if url is None or not url.strip():
        return None
    fetch.check_url(url, settings, what=what)
    return url.strip()


# -- signing ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


# -- the listener ----------------------------------------------------------------------------


def event_name(job: Job) -> str:
    outcome = "completed" if job.status == JOB_COMPLETED else "failed"
    spec = find_task(job.kind)
    return f"{spec.event_prefix if spec else 'job'}.{outcome}"


def on_final_state(job_id: int) -> None:
    """Listener: record the delivery for a job with a callback_url and start its first attempt.

    A no-op in a process that never called `install` (it would not know which database)."""
    settings = _settings
    if settings is None:
        return
    try:
        with session_scope(settings) as session:
            delivery_id = record_delivery(session, job_id)
            if delivery_id is not None:
                after_commit(session, lambda: schedule(delivery_id, 0.0, settings))
    except Exception:
        log.exception("could not record the webhook for job %s", job_id)


def record_delivery(session: Session, job_id: int) -> int | None:
    """The delivery row for a finished job (once per job and event); None when there is none."""
    job = session.get(Job, job_id)
    if job is None or not job.callback_url or job.status not in FINAL_STATES:
        return None
    event = event_name(job)
    exists = session.scalar(
        select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id, WebhookDelivery.event == event)
    )
    if exists is not None:
        return None
    delivery = WebhookDelivery(
        job_id=job_id, event=event, url=job.callback_url, status="pending", next_attempt_at=utcnow()
    )
    session.add(delivery)
    session.flush()
    return delivery.id


if on_final_state not in final_state_listeners:
    final_state_listeners.append(on_final_state)


# -- payload ---------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def build_event(session: Session, settings: Settings, job: Job, delivery: WebhookDelivery) -> dict[str, Any]:
    from app.voices.models import Voice

    spec = find_task(job.kind)
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    output_url = None
    if job.status == JOB_COMPLETED and job.result_key and (spec is None or spec.result_is_output):
        from app.storage import get_store

        base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        output_url = get_store(settings).url(
            job.result_key, expires_in=settings.signed_url_ttl_seconds, base_url=base
        )
    data: dict[str, Any] = {
        "job_id": job.public_id,
        "kind": job.kind,
        "status": job.status,
        "voice_id": voice.voice_id if voice else None,
        "output_url": output_url,
        "duration": job.duration,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "completed_at": _iso(job.completed_at),
    }
    if spec is not None and spec.event_data is not None:
        data.update(spec.event_data(session, job))
    return {
        "id": f"evt_{delivery.id}",
        "type": delivery.event,
        "created_at": _iso(job.completed_at),
        "data": data,
    }


# -- attempts --------------------------------------------------------------------------------


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt `attempt` (1-based)."""
    return BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)


def deliver(delivery_id: int, settings: Settings | None = None) -> str | None:
    """Make one attempt if it is due; returns the delivery's status afterwards (None: not ours)."""
    settings = settings or _current_settings()
    now = utcnow()
    lease = timedelta(seconds=settings.fetch_timeout_seconds + 30)
    with session_scope(settings) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None or row.status != "pending":
            return row.status if row else None
        if row.next_attempt_at is not None and row.next_attempt_at > now + timedelta(seconds=1):
            return row.status  # a duplicate wake-up; the due one is scheduled
        attempt = row.attempts + 1
        claimed = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == attempt - 1,
            )
            .values(attempts=attempt, next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(claimed) != 1:
            return None
        job = session.get(Job, row.job_id)
        if job is None:
            row.status, row.last_error, row.next_attempt_at = "failed", "The job no longer exists", None
            return "failed"
        event = build_event(session, settings, job, row)
        url = row.url

    body = json.dumps(event, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.secret, timestamp, body),
        "X-Chorus-Event": event["type"],
        "X-Chorus-Delivery": event["id"],
    }
    status_code: int | None = None
    error: str | None = None
    try:
        resp = fetch.request(
            "POST",
            url,
            settings,
            what="callback_url",
            content=body,
            headers=headers,
            follow_redirects=False,
            read_body=False,
        )
        status_code = resp.status_code
        if not resp.ok:
            error = f"The receiver answered HTTP {resp.status_code}"
    except DomainError as exc:
        error = exc.message
    except Exception as exc:  # never let a delivery crash a worker
        log.exception("webhook delivery %s failed unexpectedly", delivery_id)
        error = f"{type(exc).__name__}: {exc}"[:500]
    return _record_attempt(settings, delivery_id, attempt, status_code, error)


def _record_attempt(
    settings: Settings, delivery_id: int, attempt: int, status_code: int | None, error: str | None
) -> str:
    now = utcnow()
    with session_scope(settings) as session:
        values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now, next_attempt_at=None)
        elif attempt >= MAX_ATTEMPTS:
            values.update(status="failed", next_attempt_at=None)
        else:
            delay = backoff_seconds(attempt)
            values.update(next_attempt_at=now + timedelta(seconds=delay))
            after_commit(session, lambda: schedule(delivery_id, delay, settings))
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))
        return str(values.get("status", "pending"))


def schedule(delivery_id: int, delay_seconds: float, settings: Settings) -> None:
    """Run `deliver(delivery_id)` after `delay_seconds`: on RQ workers, or on this process's pool."""
    if settings.redis_url:
        from rq import Queue

        from app.jobs.queue import GENERAL_QUEUE

        queue = Queue(GENERAL_QUEUE, connection=_redis(settings.redis_url))
        options: dict[str, Any] = {
            "job_id": f"{RQ_ID_PREFIX}{delivery_id}-{uuid.uuid4().hex[:8]}",
            "result_ttl": 3600,
            "failure_ttl": 86400,
        }
        if delay_seconds > 0:
            queue.enqueue_in(
                timedelta(seconds=delay_seconds), "app.jobs.webhooks.deliver", delivery_id, **options
            )
        else:
            queue.enqueue("app.jobs.webhooks.deliver", delivery_id, **options)
        return
    if delay_seconds > 0:
        timer = threading.Timer(delay_seconds, _fire, args=(delivery_id, settings))
        timer.daemon = True
        with _pool_lock:
            _timers.add(timer)
        timer.start()
    else:
        _submit(delivery_id, settings)


def _fire(delivery_id: int, settings: Settings) -> None:
    with _pool_lock:
        current = threading.current_thread()
        if isinstance(current, threading.Timer):
            _timers.discard(current)
    _submit(delivery_id, settings)


def _redis(url: str) -> Any:
    client = _redis_clients.get(url)
    if client is None:
        from redis import Redis

        client = _redis_clients[url] = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    return client


def _submit(delivery_id: int, settings: Settings) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chorus-webhook")
        pool = _pool
    try:
        pool.submit(_deliver_logged, delivery_id, settings)
    except RuntimeError:  # shut down: redeliver_due picks it up later
        log.warning("webhook pool is shut down; delivery %s waits for the next pass", delivery_id)


def _deliver_logged(delivery_id: int, settings: Settings) -> None:
    try:
        deliver(delivery_id, settings)
    except Exception:
        log.exception("webhook delivery %s crashed", delivery_id)


def redeliver_due(settings: Settings, *, grace_seconds: float = 60.0) -> int:
    """Schedule pending attempts overdue by more than `grace_seconds` (lost timers); returns how many."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with session_scope(settings) as session:
        due = list(
            session.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= cutoff
                )
            )
        )
    for delivery_id in due:
        schedule(delivery_id, 0.0, settings)
    return len(due)


def shutdown() -> None:
    """Stop this process's delivery pool and pending timers (tests, process exit); attempts left
    pending are picked up by `redeliver_due`."""
    global _pool
    with _pool_lock:
        for timer in _timers:
            timer.cancel()
        _timers.clear()
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
