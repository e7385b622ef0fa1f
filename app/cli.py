"""The `chorus` command: serve, worker, migrate, users, keys, credits, models."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.table import Table

from app.cli_operator import doctor, jobs_cli, voices_cli
from app.core.config import get_settings

cli = typer.Typer(help="Chorus: self-hosted voice API server.", no_args_is_help=True, add_completion=False)
users_cli = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
credits_cli = typer.Typer(help="Grant and inspect credits.", no_args_is_help=True)
models_cli = typer.Typer(help="Inspect speech models.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(credits_cli, name="credits")
cli.add_typer(models_cli, name="models")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(voices_cli, name="voices")
cli.command("doctor")(doctor)

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@cli.command()
def migrate(revision: str = typer.Argument("head")) -> None:
    """Upgrade the database schema (Alembic)."""
    from app.core.migrate import upgrade

    upgrade(get_settings(), revision)
    console.print(f"database at {revision}")


@cli.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default CHORUS_HOST)"),
    port: int = typer.Option(None, help="Port (default CHORUS_PORT)"),
) -> None:
    """Run the API. On the embedded default the schema is upgraded and a first admin made."""
    import uvicorn

    from app.core.bootstrap import ensure_first_admin
    from app.core.migrate import upgrade
    from app.main import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if settings.embedded_database:
        upgrade(settings)
        key = ensure_first_admin(settings)
        if key:
            console.print(
                "[bold green]Created the first admin user 'admin' with starter credits.[/bold green]"
            )
            console.print("Its API key is shown only this once; keep it:")
            print(key, flush=True)
    uvicorn.run(
        create_app(settings, freeze_startup=True),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )


@cli.command()
def worker(
    burst: bool = typer.Option(False, help="Exit when the queue is empty"),
    queues: str = typer.Option(
        "stt,tts,clone,chorus",
        help="Comma-separated queues this worker takes, in turn: stt (transcriptions), "
        "tts (speech jobs), clone (clone jobs), chorus (webhooks and the rest). A GPU host might "
        "take stt,tts; some worker must take each queue.",
    ),
) -> None:
    """Run an RQ worker (needs CHORUS_REDIS_URL). Engines and DB connections are made in
    this process on first use, never inherited from a parent."""
    # Workers share hosts (scaled, or beside an API): Whisper's OpenMP threads must sleep, not
    # spin, while they wait, or co-located decodings burn each other's cores. Measured on 2 cores
    # (bench/load.py, transcriptions/s): two workers 0.33 spinning, 0.81 sleeping; one worker
    # 0.76 spinning, 0.56 sleeping. Set before CTranslate2's OpenMP runtime loads; an operator's
    # own OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # One Whisper thread per worker: capacity then grows with worker processes (one per core).
    # On 2 cores (bench/load.py --mix transcribe, 4 s clips, transcriptions/s): one worker 0.55 with
    # one thread, 0.74 with two; two workers 1.04 with one thread each, 0.89 with two. Read by the
    # settings below, so an operator's CHORUS_STT_THREADS wins (a lone worker on its own host: 2).
    os.environ.setdefault("CHORUS_STT_THREADS", "1")
    from redis import Redis
    from rq import SimpleWorker
    from rq.worker import DequeueStrategy

    from app.core.bootstrap import model_janitor
    from app.core.db import dispose_engines
    from app.core.priority import lower_current_thread
    from app.jobs.queue import STT_QUEUE, WORKER_QUEUES, tie_children_to_this_process
    from app.jobs.reconciler import ReconcilerThread

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if not settings.redis_url:
        _fail("CHORUS_REDIS_URL is not set; the embedded server runs jobs in-process")
    names = [name.strip().lower() for name in queues.split(",") if name.strip()]
    unknown = sorted(set(names) - set(WORKER_QUEUES))
    if not names or unknown:
        _fail(f"unknown queue(s) {', '.join(unknown) or '(none given)'}; use: {', '.join(WORKER_QUEUES)}")
    # Before any thread or engine exists, so all of them inherit it: API processes on the same
    # cores keep answering cheap requests while this worker clones and synthesizes.
    lower_current_thread(settings.compute_nice)
    dispose_engines()
    from app.engines import registry
    from app.jobs import webhooks

    webhooks.install(settings)  # jobs finished here notify their callback URLs
    if settings.warm_models:  # the first job on a fresh worker is not the slow one
        registry.warm_up(settings, in_worker=True)
    assert settings.redis_url is not None  # checked above: a worker needs the queue
    connection = Redis.from_url(settings.redis_url)
    reconciler = ReconcilerThread(settings, settings.reconcile_interval_seconds)
    reconciler.start()
    janitor = model_janitor(settings)  # a worker's models leave memory when idle too
    janitor.start()
    tie_children_to_this_process()  # RQ's scheduler is forked below; it must not outlive us
    # SimpleWorker runs jobs in this process, so loaded models are reused across jobs. Its queues
    # are taken in turn: in priority order a steady stream of transcriptions left speech jobs
    # waiting 50 s at concurrency 16 (bench/load.py).
    rq_worker = SimpleWorker(list(dict.fromkeys(names)), connection=connection)
    listener = None
    if STT_QUEUE in names:  # the API admits transcriptions only while some worker beats here
        from app.transcription.workers import TranscriptionListener

        listener = TranscriptionListener(settings, rq_worker.name)
        listener.start()
    try:
        rq_worker.work(burst=burst, with_scheduler=True, dequeue_strategy=DequeueStrategy.ROUND_ROBIN)
    finally:
        if listener is not None:
            listener.stop()
        reconciler.stop()
        janitor.stop()


@users_cli.command("create")
def users_create(
    name: str, admin: bool = typer.Option(False, "--admin", help="Make an administrator")
) -> None:
    from app.auth import service as auth
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            user = auth.create_user(session, name, is_admin=admin)
            console.print(f"created user {user.name} (id {user.id}{', admin' if admin else ''})")
    except DomainError as exc:
        _fail(exc.message)


@keys_cli.command("create")
def keys_create(name: str, label: str = typer.Option("default", help="A label for the key")) -> None:
    """Create an API key for user NAME; the key is printed alone on the last line."""
    from app.auth import service as auth
    from app.core.db import session_scope
    from app.core.errors import DomainError

    settings = get_settings()
    try:
        with session_scope(settings) as session:
            user = auth.get_user_by_name(session, name)
            row, key = auth.create_api_key(session, settings, user.id, label)
            console.print(f"created key {row.prefix}… for {user.name}; it is shown only once:")
    except DomainError as exc:
        _fail(exc.message)
    print(key, flush=True)


@keys_cli.command("list")
def keys_list(name: str) -> None:
    from app.auth import service as auth
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            user = auth.get_user_by_name(session, name)
            table = Table("prefix", "label", "created", "last used", "revoked")
            for key in auth.list_api_keys(session, user.id):
                table.add_row(
                    key.prefix,
                    key.name,
                    key.created_at.isoformat(timespec="seconds"),
                    key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "-",
                    key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-",
                )
            console.print(table)
    except DomainError as exc:
        _fail(exc.message)


@keys_cli.command("revoke")
def keys_revoke(prefix: str) -> None:
    from app.auth import service as auth
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            auth.revoke_api_key(session, prefix)
        console.print(f"revoked key {prefix}")
    except DomainError as exc:
        _fail(exc.message)


@credits_cli.command("grant")
def credits_grant(
    name: str,
    amount: int,
    permanent: bool = typer.Option(False, "--permanent", help="Credits that never expire"),
) -> None:
    from app.auth import service as auth
    from app.billing import service as billing
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            user = auth.get_user_by_name(session, name)
            billing.grant(session, user.id, amount, permanent=permanent, note="granted by operator")
            bal = billing.balance(session, user.id)
        console.print(
            f"granted {amount} {'permanent' if permanent else 'regular'} credits to {name}; "
            f"available {bal.available}"
        )
    except DomainError as exc:
        _fail(exc.message)


@credits_cli.command("show")
def credits_show(name: str) -> None:
    from app.auth import service as auth
    from app.billing import service as billing
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            user = auth.get_user_by_name(session, name)
            bal = billing.balance(session, user.id)
        table = Table("user", "available", "regular", "permanent", "held", "resets")
        table.add_row(
            name,
            str(bal.available),
            str(bal.regular),
            str(bal.permanent),
            str(bal.held),
            bal.reset_at.isoformat() if bal.reset_at else "-",
        )
        console.print(table)
    except DomainError as exc:
        _fail(exc.message)


@credits_cli.command("usage")
def credits_usage(
    name: str,
    limit: int = typer.Option(20, min=1, max=1000, help="How many entries, newest first"),
    skip: int = typer.Option(0, min=0, help="Entries to skip"),
) -> None:
    """A user's credit ledger, newest first."""
    from app.auth import service as auth
    from app.billing import service as billing
    from app.core.db import session_scope
    from app.core.errors import DomainError

    try:
        with session_scope() as session:
            user = auth.get_user_by_name(session, name)
            bal = billing.balance(session, user.id)
            entries, total = billing.usage_entries(session, user.id, skip=skip, limit=limit)
    except DomainError as exc:
        _fail(exc.message)
        return
    table = Table(
        "when",
        "type",
        "amount",
        "regular",
        "permanent",
        "held",
        "job",
        "note",
        title=f"{name}: {len(entries)} of {total} entries; available {bal.available}",
    )
    for e in entries:
        table.add_row(
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            f"{e.amount:+d}",
            f"{e.regular_delta:+d}",
            f"{e.permanent_delta:+d}",
            f"{e.held_delta:+d}",
            e.job_public_id or "-",
            e.note or "",
        )
    console.print(table)


@models_cli.command("list")
def models_list() -> None:
    """Each model, its source package, size, and whether this process has it loaded."""
    from app.engines.registry import list_models

    table = Table("model", "role", "source", "size", "loaded")
    for info in list_models(get_settings()):
        table.add_row(
            info.name,
            info.role,
            info.source,
            f"{info.size_bytes / 1e6:.1f} MB",
            "yes" if info.loaded else "no",
        )
    console.print(table)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
