"""Settings, read from the environment with the `CHORUS_` prefix.

The embedded default needs nothing set: SQLite and blobs live under DATA_DIR, jobs run
on in-process threads, and a secret key is generated once and kept in DATA_DIR.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The one value we refuse outside dev: it appears in docs and examples.
INSECURE_DEFAULT_SECRET = "change-me"


CloneFamily = Literal["native", "clone", "voiceai", "envelope", "openai"]


class CostsTable(BaseModel):
    """Credits charged per unit of work (defaults from the source documents)."""

    # The clone family's price (seed 003), and the default of every family left unset below.
    clone: int = Field(1000, ge=0)
    # AudioPod's pricing table (seed 000): custom voice creation is free.
    native_clone: int = Field(0, ge=0)
    voiceai_clone: int | None = Field(None, ge=0)
    envelope_clone: int | None = Field(None, ge=0)
    openai_clone: int | None = Field(None, ge=0)
    tts_per_byte: int = Field(1, ge=0)
    preview: int = Field(0, ge=0)
    transcription_per_second: int = Field(1, ge=0)

    def clone_cost(self, family: CloneFamily) -> int:
        """What creating a cloned voice costs through `family`'s routes."""
        if family == "clone":
            return self.clone
        own: int | None = getattr(self, f"{family}_clone")
        return self.clone if own is None else own

    def effective(self) -> dict[str, int]:
        """The table as charged: every family's clone cost resolved."""
        table = self.model_dump()
        families: tuple[CloneFamily, ...] = ("native", "voiceai", "envelope", "openai")
        for family in families:
            table[f"{family}_clone"] = self.clone_cost(family)
        return table


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHORUS_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    env: Literal["dev", "test", "production"] = "production"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_public_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    secret_key: SecretStr | None = None
    models_dir: Path | None = None
    # Models load on first use and leave memory after `model_idle_ttl_seconds` unused (0: never).
    # `preload_models` load at start and stay (joe, kokoro, whisper-base, speaker-encoder), so
    # the first request is not the slow one; `warm_models=false` preloads nothing.
    warm_models: bool = True
    preload_models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["joe", "whisper-base"])
    model_idle_ttl_seconds: float = Field(default=600.0, ge=0)
    # Processor for Piper, Kokoro and Whisper: auto (a CUDA GPU when usable, else the CPU), cpu, cuda.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Threads per Piper synthesis (0: onnxruntime's default, all cores). 1 lets concurrent
    # requests scale across cores instead of contending inside each synthesis.
    tts_threads: int = 0
    # Threads per Whisper decoding (0: two, the fastest single decoding on 2 cores; `chorus worker`
    # makes it one unless set, so transcriptions scale with worker processes). CTranslate2's
    # OpenMP threads spin while they wait unless told not to (`chorus worker` does: see there).
    stt_threads: int = 0
    # Whisper model behind OpenAI's whisper-1 and other transcription model names: base | tiny.en.
    transcription_model: Literal["base", "tiny.en"] = "base"
    clone_engine: Literal["timbre", "xtts"] = "timbre"
    # How a CPU clone's speech is rendered after WORLD: hifigan (its mel band mapping and HiFi-GAN:
    # nearer the person, 0.701 -> 0.747 on 19 real speakers, but RTF ~0.64 -> ~1.2 on 2 cores) or
    # world (WORLD alone, as clones spoke before: for hosts where clone speech must stream faster).
    clone_vocoder: Literal["hifigan", "world"] = "hifigan"
    xtts_model_dir: Path | None = None
    # Kokoro's 54 voice packs (default: <venv>/share/chorus/kokoro/voices, where `make install` and
    # the Dockerfiles put them) and its threads per synthesis (0: two, the measured best on 2 cores).
    kokoro_voices_dir: Path | None = None
    kokoro_threads: int = 0

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None

    api_key_prefix: str = "ap_"
    # How long an API process trusts a key it has just checked without asking the database again
    # (0: every request asks). A key revoked from another process (`chorus keys revoke`) stops
    # working within this; one revoked through this process stops at once. The lookup was a
    # tenth of a cheap request's time.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    jwt_ttl_seconds: int = 3600
    signed_url_ttl_seconds: int = 3600
    starter_credits: int = 100_000

    # Limits on what a client may send.
    max_upload_bytes: int = 25 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    max_form_fields: int = 100
    max_audio_seconds: float = 600.0
    max_sample_rate: int = 192_000
    max_tts_chars: int = 4096

    rate_limit_per_minute: int = 600

    # Outbound fetches (voice_url downloads, webhooks): SSRF rules apply unless the host is listed.
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_max_bytes: int | None = None  # None: max_upload_bytes
    fetch_timeout_seconds: float = 10.0
    costs: CostsTable = Field(default_factory=CostsTable)

    # Jobs.
    # A worker's heartbeat renews its lease every third of it; a killed worker's lease runs out
    # within this, and the next reconciler pass (below) hands the job to another worker:
    # ~20-25 s from kill -9 to the job running again (was 336 s with a 300 s lease).
    job_lease_seconds: int = 20
    # Hard cap on one attempt in an RQ worker; leases are heartbeat-extended, so this is not tied to them.
    job_timeout_seconds: int = 1800
    job_max_attempts: int = 3
    job_retry_base_seconds: float = 2.0
    worker_threads: int = 2
    # Nice value for heavy compute: RQ worker processes, embedded job threads and Whisper inside the
    # API, so request handling keeps the CPU when cores are saturated. 0 runs them at normal priority
    # (Whisper's decoding threads still one step down: faster, see WhisperEngine).
    compute_nice: int = Field(default=10, ge=0, le=19)
    reconcile_interval_seconds: float = 5.0  # expired leases and lost queue entries; two cheap queries
    # Where Whisper decodes: "workers" (the `stt` queue; the API waits for the segments), "api"
    # (inside the request), "auto" (workers when CHORUS_REDIS_URL is set).
    transcribe_on: Literal["auto", "api", "workers"] = "auto"
    # Transcriptions waiting for a worker before new ones are refused with 429 and Retry-After.
    stt_queue_limit: int = Field(default=16, ge=1)
    # A transcription no worker has started within this is refused (503) and its credits released;
    # a started one whose worker stops beating its heartbeat for stt_worker_silence_seconds fails.
    stt_start_timeout_seconds: float = Field(default=60.0, gt=0)
    stt_worker_silence_seconds: float = Field(default=10.0, gt=0)

    @field_validator("preload_models", "fetch_allow_hosts", mode="before")
    @classmethod
    def _name_list(cls, value: Any) -> Any:
        """CHORUS_PRELOAD_MODELS and CHORUS_FETCH_ALLOW_HOSTS as a JSON list or a comma-separated
        list, lower case ("" is the empty list); host names lose IPv6 brackets."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            return [str(v).strip().lower().strip("[]") for v in value if str(v).strip()]
        return value

    @model_validator(mode="after")
    def _refuse_insecure_secret(self) -> Settings:
        if (
            self.secret_key is not None
            and self.secret_key.get_secret_value() == INSECURE_DEFAULT_SECRET
            and self.env != "dev"
        ):
            raise ValueError(
                "CHORUS_SECRET_KEY is the insecure default; set a random value "
                "(or CHORUS_ENV=dev for local development)"
            )
        if not self.embedded_database and self.secret_key is None and self.env != "dev":
            raise ValueError("CHORUS_SECRET_KEY must be set when CHORUS_DATABASE_URL points at a server")
        if self.transcribe_on == "workers" and not self.redis_url:
            raise ValueError("CHORUS_TRANSCRIBE_ON=workers needs CHORUS_REDIS_URL (the workers' queue)")
        return self

    @property
    def transcribes_on_workers(self) -> bool:
        return self.transcribe_on == "workers" or (self.transcribe_on == "auto" and bool(self.redis_url))

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chorus.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'blobs').resolve()}"

    @property
    def resolved_fetch_max_bytes(self) -> int:
        return self.fetch_max_bytes if self.fetch_max_bytes is not None else self.max_upload_bytes

    @property
    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.data_dir / "models").resolve()

    @property
    def secret(self) -> str:
        """The signing key; on the embedded default one is generated once and kept in DATA_DIR."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Exclusive create: two processes starting together agree on one key.
        try:
            with open(key_file, "x") as f:
                f.write(key)
            key_file.chmod(0o600)
        except FileExistsError:
            return key_file.read_text().strip()
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
