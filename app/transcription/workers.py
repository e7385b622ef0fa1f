"""Whisper on the worker pool: the API hands a decoded upload to the `stt` queue and streams back
the segments a worker decodes, so transcription capacity grows with workers (and GPU hosts), not
with API processes.

Protocol, all in Redis under `chorus:stt:<request>:` and expiring on its own:
- `audio`: the request's 16 kHz mono samples as int16 (written by the API before it enqueues);
- `alive`: set by the worker that took the request and renewed by its heartbeat; when it lapses
  after the request started, the worker is gone and the API fails the request (never waits on);
- `out`: a list of JSON messages the worker pushes as it decodes (`info` once the language is
  known, then `segment`s, then `done`, or `error` at any point); the API pops them as they come;
- `cancel`: set by the API when its client went away; the worker stops at the next segment.

Credits stay with the API (app.transcription.service holds, captures or releases them): a worker
only computes. Requests are refused before anything is held when the queue is full (429 with
Retry-After) or no worker listens to it (503).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np

from app.core import errors
from app.core.config import Settings, get_settings
from app.core.errors import DomainError, RateLimited, Unavailable
from app.core.periodic import PeriodicThread
from app.engines.stt.whisper import Segment, TranscriptInfo, Word
from app.jobs.queue import STT_QUEUE

log = logging.getLogger(__name__)

DECODE_FUNCTION = "app.transcription.workers.decode_on_worker"
KEY_TTL_SECONDS = 3600  # every key of a request expires on its own, whatever happens to either side
POLL_SECONDS = 1.0  # how often a waiting API checks that its worker is still there
# Retry-After for a full queue: about one transcription's time on a busy worker.
FULL_QUEUE_RETRY_AFTER_SECONDS = 5
# Workers taking `stt` say so here (member: worker name, score: Redis's clock) every few seconds,
# busy or idle. RQ's own registrations outlive a killed worker by minutes (its key's TTL is the
# job timeout), which left requests waiting the whole start timeout for a worker that was gone.
LISTENERS_KEY = "chorus:stt:listeners"
LISTENER_BEAT_SECONDS = 5.0
LISTENER_LAPSE_SECONDS = 15.0  # three missed beats: gone


@cache
def _redis(url: str) -> Any:
    from redis import Redis

    # No socket timeout: BLPOP blocks longer than any fixed one (its own timeout bounds it).
    return Redis.from_url(url, socket_connect_timeout=3)


def _connection(settings: Settings) -> Any:
    assert settings.redis_url, "transcription on workers needs CHORUS_REDIS_URL"
    return _redis(settings.redis_url)


def _stt_queue(settings: Settings) -> Any:
    from rq import Queue

    return Queue(STT_QUEUE, connection=_connection(settings))


@dataclasses.dataclass(frozen=True)
class _Keys:
    """One request's Redis keys: `audio` (its samples), `alive` (renewed by the decoding worker),
    `out` (the messages the API pops), `cancel` (set when its client left)."""

    request_id: str

    def key(self, name: str) -> str:
        return f"chorus:stt:{self.request_id}:{name}"


def _redis_now(redis: Any) -> float:
    """Redis's clock, so that workers and APIs on hosts with skewed clocks agree."""
    seconds, micros = redis.time()
    return float(seconds) + micros / 1e6


def listening_workers(settings: Settings) -> int:
    """Workers taking `stt` whose last beat is under LISTENER_LAPSE_SECONDS old."""
    redis = _connection(settings)
    return int(redis.zcount(LISTENERS_KEY, _redis_now(redis) - LISTENER_LAPSE_SECONDS, "+inf"))


class TranscriptionListener(PeriodicThread):
    """A worker's beat on LISTENERS_KEY while it runs, busy or idle; `stop()` takes it off."""

    def __init__(self, settings: Settings, worker_name: str) -> None:
        super().__init__("stt-listener", LISTENER_BEAT_SECONDS, self._beat)
        self.redis, self.worker_name = _connection(settings), worker_name
        self._beat()  # listed before the worker takes anything

    def _beat(self) -> None:
        now = _redis_now(self.redis)
        pipe = self.redis.pipeline()
        pipe.zadd(LISTENERS_KEY, {self.worker_name: now})
        pipe.zremrangebyscore(LISTENERS_KEY, "-inf", now - 10 * LISTENER_LAPSE_SECONDS)  # long gone
        pipe.execute()

    def stop(self) -> None:
        super().stop()
        if self.is_alive():
            self.join(timeout=5)  # a beat under way would list it again after the removal
        try:
            self.redis.zrem(LISTENERS_KEY, self.worker_name)
        except Exception:  # Redis gone at shutdown: the entry lapses on its own
            log.warning("could not take %s off %s", self.worker_name, LISTENERS_KEY, exc_info=True)


def admit(settings: Settings) -> None:
    """Refuse a transcription the workers cannot take, before any credits are held."""
    from redis.exceptions import RedisError

    queue = _stt_queue(settings)
    try:
        waiting = len(queue)
        listening = listening_workers(settings)
    except RedisError as exc:
        raise Unavailable(f"The transcription queue (Redis) is unreachable: {exc}") from exc
    if listening == 0:
        raise Unavailable(
            "No worker takes transcriptions: start `chorus worker` (its default queues include stt)"
        )
    if waiting >= settings.stt_queue_limit:
        raise RateLimited(
            f"{waiting} transcriptions are already waiting for a worker; retry later",
            retry_after=FULL_QUEUE_RETRY_AFTER_SECONDS,
        )


def _to_pcm16(audio: np.ndarray) -> bytes:
    samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return bytes(np.round(samples * 32767.0).astype("<i2").tobytes())


def _from_pcm16(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32767.0


def _segment_from(data: dict[str, Any]) -> Segment:
    words = data.pop("words", None)
    return Segment(**data, words=[Word(**w) for w in words] if words is not None else None)


def _error_from(data: dict[str, Any]) -> DomainError:
    """The worker's DomainError as the same class here, so the family renders it as if local."""
    cls = getattr(errors, str(data.get("type", "")), None)
    message = str(data.get("message") or "Transcription failed")
    if isinstance(cls, type) and issubclass(cls, DomainError) and cls is not RateLimited:
        return cls(message, param=data.get("param"))
    return Unavailable(message)


class RemoteWhisper:
    """WhisperEngine's `stream` answered by a worker: same arguments, same info and segments."""

    def __init__(self, engine_name: str, settings: Settings) -> None:
        self.engine_name = engine_name
        self.settings = settings

    def stream(
        self,
        audio: np.ndarray,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        word_timestamps: bool = False,
    ) -> tuple[TranscriptInfo, Iterator[Segment]]:
        request = _Request(self.settings)
        request.submit(
            audio,
            self.engine_name,
            {
                "task": task,
                "language": language,
                "prompt": prompt,
                "temperature": temperature,
                "word_timestamps": word_timestamps,
            },
        )
        try:
            message = request.next_message()
            if message["kind"] != "info":
                raise Unavailable(f"The transcription worker answered {message['kind']!r} first")
            info = TranscriptInfo(**message["info"])
        except BaseException:
            request.close()
            raise
        return info, request.segments()


class _Request:
    """One transcription submitted to the `stt` queue, seen from the waiting API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = _Keys(uuid.uuid4().hex)
        self.redis = _connection(settings)
        self.started = False
        self.finished = False
        self.submitted_at = 0.0

    def submit(self, audio: np.ndarray, engine_name: str, options: dict[str, Any]) -> None:
        self.redis.set(self.keys.key("audio"), _to_pcm16(audio), ex=KEY_TTL_SECONDS)
        _stt_queue(self.settings).enqueue(
            DECODE_FUNCTION,
            self.keys.request_id,
            engine_name,
            options,
            job_id=f"stt-{self.keys.request_id}",
            # Not started within the wait: dropped from the queue (the API has given up by then).
            ttl=int(self.settings.stt_start_timeout_seconds) + 1,
            job_timeout=self.settings.job_timeout_seconds,
            result_ttl=0,
            failure_ttl=3600,
        )
        self.submitted_at = time.monotonic()

    def next_message(self) -> dict[str, Any]:
        """The worker's next message; raises Unavailable when no worker starts it in time, or its
        worker stops beating. Never waits without bound."""
        while True:
            item = self.redis.blpop([self.keys.key("out")], timeout=POLL_SECONDS)
            if item is None and not self._worker_present():
                item = self.redis.lpop(self.keys.key("out"))  # pushed just before the worker's exit
                if item is None:
                    self._give_up()
            if item is None:
                continue
            self.started = True
            message: dict[str, Any] = json.loads(item[1] if isinstance(item, tuple | list) else item)
            if message["kind"] == "error":
                self.finished = True
                raise _error_from(message["error"])
            if message["kind"] == "done":
                self.finished = True
            return message

    def _worker_present(self) -> bool:
        alive = bool(self.redis.exists(self.keys.key("alive")))
        if alive:
            self.started = True
            return True
        if not self.started:
            return time.monotonic() - self.submitted_at < self.settings.stt_start_timeout_seconds
        return False

    def _give_up(self) -> None:
        if self.started:
            raise Unavailable("The worker transcribing this audio stopped; please retry")
        raise Unavailable(
            f"No worker started this transcription within {self.settings.stt_start_timeout_seconds:g} s; "
            "please retry"
        )

    def segments(self) -> Iterator[Segment]:
        try:
            while True:
                message = self.next_message()
                if message["kind"] == "done":
                    return
                if message["kind"] == "segment":
                    yield _segment_from(message["segment"])
        finally:
            self.close()

    def close(self) -> None:
        """Tell the worker to stop (the client left, or we did) and drop what it would read."""
        pipe = self.redis.pipeline()
        if not self.finished:
            pipe.set(self.keys.key("cancel"), 1, ex=KEY_TTL_SECONDS)
            if not self.started:  # never taken: off the queue, so no worker decodes for nobody
                _stt_queue(self.settings).remove(f"stt-{self.keys.request_id}")
        pipe.delete(self.keys.key("audio"), self.keys.key("out"))
        pipe.execute()


# --- the worker's side ------------------------------------------------------------------------


def _keep_alive(redis: Any, key: str, silence_seconds: float) -> PeriodicThread:
    """Renews the `alive` key while the worker decodes: its absence tells the API it is gone."""
    ttl_ms = int(silence_seconds * 1000)

    def renew() -> None:
        redis.set(key, 1, px=ttl_ms)

    renew()
    return PeriodicThread("stt-alive", ttl_ms / 4000, renew)


def decode_on_worker(
    request_id: str, engine_name: str, options: dict[str, Any], settings: Settings | None = None
) -> None:
    """RQ entry point: decode one request's audio and push its messages for the waiting API."""
    from app.engines import registry

    settings = settings or get_settings()
    redis = _connection(settings)
    keys = _Keys(request_id)

    def push(kind: str, **data: Any) -> None:
        pipe = redis.pipeline()
        pipe.rpush(keys.key("out"), json.dumps({"kind": kind, **data}))
        pipe.expire(keys.key("out"), KEY_TTL_SECONDS)
        pipe.execute()

    if redis.exists(keys.key("cancel")):
        return  # its client left while it waited
    with _keep_alive(redis, keys.key("alive"), settings.stt_worker_silence_seconds):
        try:
            raw = redis.get(keys.key("audio"))
            if raw is None:
                raise Unavailable("The audio of this transcription expired before a worker took it")
            engine = registry.get_stt(engine_name, settings)
            info, segments = engine.stream(_from_pcm16(raw), **options)
            push("info", info=dataclasses.asdict(info))
            for segment in segments:
                if redis.exists(keys.key("cancel")):
                    log.info("transcription %s cancelled by its client", request_id)
                    return
                push("segment", segment=dataclasses.asdict(segment))
            push("done")
        except DomainError as exc:
            push("error", error={"type": type(exc).__name__, "message": exc.message, "param": exc.param})
        except Exception as exc:
            log.exception("transcription %s failed on this worker", request_id)
            push(
                "error",
                error={"type": "Unavailable", "message": f"Transcription failed: {type(exc).__name__}"},
            )
        finally:
            redis.delete(keys.key("audio"))
