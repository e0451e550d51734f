"""Settings from the environment: one object, read once."""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


@cache
def base_dir() -> Path:
    """What relative paths in the settings are relative to, fixed once per process: the project's
    directory when the engine runs from its source checkout (as `make install` sets it up), else
    the directory the process started in. Never the current directory of the moment, so `serve`
    started from elsewhere finds the same database, key file and JWT secret."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "messaging_whatsapp").is_dir():
        return root
    return Path.cwd().resolve()


def _absolute(path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base_dir() / path).resolve()


# The AI replies' default wait for a customer's burst to end (AI_DEBOUNCE_SECONDS).
AI_DEBOUNCE_SECONDS = 4.0


class Settings(BaseSettings):
    """Engine settings. Names keep seed 001's meaning; everything has an embedded default."""

    # The project's .env, then the current directory's (which wins where both set a variable).
    model_config = SettingsConfigDict(
        env_file=(str(base_dir() / ".env"), ".env"), env_file_encoding="utf-8", extra="ignore"
    )

    # A relative SQLite path is relative to base_dir(), like DATA_DIR.
    database_url: str = "sqlite:///./data/messaging_whatsapp.db"
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # The key file (encryption.key), the JWT secret; made absolute against base_dir() at once.
    data_dir: Path = Path("./data")

    whatsapp_verify_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    evolution_api_key: SecretStr | None = None
    evolution_api_url: str | None = None
    evolution_instance_name: str | None = None
    whatsapp_provider: str = "simulator"
    # Comma-separated Fernet keys, newest first (MultiFernet): rotate by prepending a new key.
    whatsapp_encryption_key: SecretStr | None = None

    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: int = 12 * 3600

    stream_prefix: str = ""
    # Real-time events (realtime/): the events kept per tenant for clients that reconnect, and
    # how often an idle event stream sends a keep-alive comment.
    realtime_buffer_events: int = Field(default=10_000, ge=1)
    # ... and at least this many seconds of them (whichever keeps more), never more than the cap.
    realtime_buffer_seconds: float = Field(default=900.0, ge=0)
    realtime_buffer_max_events: int = Field(default=50_000, ge=1)
    realtime_keepalive_seconds: float = Field(default=15.0, gt=0, le=15)
    # Centrifugo (seed 003), optional: its HTTP API's address and key, and the secret its
    # connection tokens are signed with.
    centrifugo_url: str | None = None
    centrifugo_api_key: SecretStr | None = None
    centrifugo_token_secret: SecretStr | None = None
    centrifugo_token_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    webhook_max_body_bytes: int = 1024 * 1024
    # "fsync" makes the receiver wait for Redis WAITAOF before answering.
    webhook_durability: str = "default"
    stream_visibility_timeout_ms: int = 30_000
    stream_max_deliveries: int = 5
    # Dead-lettered entries hold raw requests (personal data): deleted after this many days.
    dlq_retention_days: int = Field(default=14, ge=1)
    worker_batch_size: int = 2000
    # Inbound batches one worker process applies at once (PostgreSQL; SQLite always takes one).
    worker_concurrency: int = Field(default=3, ge=1)
    worker_block_ms: int = 1000
    instance_cache_ttl_seconds: float = 300.0
    # The operator's view (ops/): /readyz answers 503 while a stream's oldest entry some consumer
    # group has not acknowledged is older than this; every engine process writes a heartbeat this
    # often, and is shown alive while its last one is younger than worker_alive_seconds.
    ready_max_pending_age_seconds: float = Field(default=300.0, gt=0)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_alive_seconds: float = Field(default=30.0, gt=0)

    # Sending. Provider API bases are settings so a proxy or a local fake can stand in.
    meta_graph_url: str = "https://graph.facebook.com/v23.0"
    twilio_api_url: str = "https://api.twilio.com"
    # Where the built-in simulator's API listens (default: this engine's PUBLIC_URL).
    simulator_url: str | None = None
    # Calls to the addresses tenants give (Evolution and WuzAPI gateways) refuse hosts that are
    # not on the public internet; true lets them reach private ones (local development).
    outbound_allow_private: bool = False
    # The knowledge base's embeddings (knowledge/embeddings.py): the bundled local model unless
    # AI_EMBEDDINGS_MODEL names a model of an OpenAI-compatible endpoint, reached at
    # AI_EMBEDDINGS_URL (the full .../v1/embeddings address) or else AI_BASE_URL + /embeddings.
    ai_base_url: str | None = None
    ai_api_key: SecretStr | None = None
    ai_embeddings_url: str | None = None
    ai_embeddings_model: str | None = None
    ai_timeout_seconds: float = Field(default=30.0, gt=0)
    # The AI replies' chat model (assistant/): AI_MODEL of the OpenAI-compatible server at
    # AI_BASE_URL (a tenant may set its own server, key and model). Customer messages are answered
    # once they pause for AI_DEBOUNCE_SECONDS (a burst gets one answer).
    ai_model: str = "gpt-4o-mini"
    # Serve a deterministic fake model at PUBLIC_URL/fake-ai/v1 (api/fake_ai.py) and answer from it
    # when no AI_BASE_URL is set: `make run`'s demo, with no network and no key.
    ai_fake: bool = False
    ai_debounce_seconds: float = Field(default=AI_DEBOUNCE_SECONDS, ge=0, le=300)
    sender_batch_size: int = Field(default=200, ge=1)
    sender_concurrency: int = Field(default=128, ge=1)
    sender_batches_in_flight: int = Field(default=3, ge=1)
    send_max_attempts: int = Field(default=5, ge=1)
    send_backoff_base_seconds: float = 1.0
    send_backoff_max_seconds: float = 300.0
    # How long a message may stay claimed, or sent with its answer lost, before it ends failed
    # with reason unknown_outcome (receipts that arrive in time settle it instead).
    send_outcome_grace_seconds: float = 120.0
    # How often the scheduler evaluates the tenants' alert rules.
    alert_pass_seconds: float = Field(default=30.0, gt=0)
    # Events out over HTTP (integrations/): each POST's timeout; the waits before the attempts
    # after a failed one (seconds, comma-separated, the last repeating; each with up to 20% more
    # at random); retried until this long after the event, then failed; how often the delivery
    # pass looks for due deliveries; deliveries (their bodies may hold phones) kept this long.
    webhook_delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_delivery_retry_seconds: str = "5,30,120,300,1800,3600,7200,14400,28800"
    webhook_delivery_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_delivery_pass_seconds: float = Field(default=1.0, gt=0)
    webhook_delivery_retention_days: int = Field(default=30, ge=1)
    # Rate limits: off only for load tests.
    rate_limits_enabled: bool = True
    tenant_send_rate: float = Field(default=200.0, gt=0)
    api_rate_per_client: float = Field(default=50.0, gt=0)
    api_burst_per_client: float = Field(default=100.0, ge=1)

    # The simulator provider's behaviour.
    simulator_failure_rate: float = Field(default=0.02, ge=0, le=1)
    simulator_read_rate: float = Field(default=0.6, ge=0, le=1)
    simulator_receipt_delay_ms: int = Field(default=200, ge=0)
    simulator_reply_rate: float = Field(default=0.0, ge=0, le=1)
    simulator_latency_ms: int = Field(default=40, ge=0)
    # Off measures sending alone (bench/send.py): the simulator then posts no receipts or replies.
    simulator_receipts: bool = True
    # A JSON-lines file where the simulator writes every message it takes (proof for tests).
    simulator_log: Path | None = None
    # Warm-up of a new number in campaigns: this many messages on day one, times growth each day.
    campaign_warmup_first_day: int = Field(default=20, ge=1)
    campaign_warmup_growth: float = Field(default=2.0, ge=1.0, le=10.0)

    # The HTTP server's guard against slow and greedy clients (api/serving.py). A request's line
    # and headers must arrive within this long of the connection opening, or of the request's
    # first byte on a kept-alive connection (the wait between requests is uvicorn's keep-alive).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    # A request body must arrive whole within this long of its headers: a 1 MiB webhook body
    # (WEBHOOK_MAX_BODY_BYTES) needs 0.3 Mbit/s, the up to 64 MiB the webhook reads before its
    # 413 about 18 Mbit/s.
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Connections one client address may hold open at once, per server process (0: no cap). 100
    # is well above what one legitimate client holds (a browser about 6, `wrk -c64` in our
    # benchmarks 64; Meta and Twilio deliver webhooks from several addresses each) and keeps one
    # address from taking more than 100 of a process's file descriptors (often 1024 in all).
    http_max_connections_per_client: int = Field(default=100, ge=0)
    # Networks (comma-separated) the cap does not count. Loopback by default: its clients are this
    # host's own, such as the sender calling the built-in simulator (up to SENDER_CONCURRENCY
    # connections per number) or a reverse proxy carrying every client (which should cap them).
    http_connection_cap_exempt: str = "127.0.0.0/8,::1"

    log_level: str = Field(default="INFO")

    @field_validator("http_connection_cap_exempt")
    @classmethod
    def _known_networks(cls, value: str) -> str:
        """Refuse an exemption list that does not parse, at start rather than at the first connection."""
        networks(value)
        return value

    @field_validator("webhook_delivery_retry_seconds")
    @classmethod
    def _known_delays(cls, value: str) -> str:
        """Refuse a retry schedule that does not parse, at start rather than at the first failure."""
        retry_delays(value)
        return value

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        """The waits before each retry of an event delivery, in order (the last repeats)."""
        return retry_delays(self.webhook_delivery_retry_seconds)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Self:
        """Relative paths become absolute once, against base_dir() (not the current directory)."""
        self.data_dir = _absolute(self.data_dir)
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            database = Path(url.database)
            if not database.expanduser().is_absolute():
                self.database_url = url.set(database=str(_absolute(database))).render_as_string(
                    hide_password=False
                )
        return self

    @property
    def is_embedded(self) -> bool:
        """True when streams live in the database instead of Redis."""
        return not self.redis_url


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or networks (`10.0.0.0/8, ::1`); ValueError names a bad one."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def retry_delays(text: str) -> tuple[float, ...]:
    """Comma-separated non-negative seconds (`5,30,120`); ValueError when there is none or one
    is not a number of seconds."""
    delays = tuple(float(item) for item in text.split(",") if item.strip())
    if not delays or any(delay < 0 or delay != delay for delay in delays):
        raise ValueError("give at least one wait, in seconds, none negative")
    return delays


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
