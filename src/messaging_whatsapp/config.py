"""Settings from the environment: one object, read once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Engine settings. Names keep seed 001's meaning; everything has an embedded default."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///./data/messaging_whatsapp.db"
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
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

    # Sending. Provider API bases are settings so a proxy or a local fake can stand in.
    meta_graph_url: str = "https://graph.facebook.com/v23.0"
    twilio_api_url: str = "https://api.twilio.com"
    # Where the built-in simulator's API listens (default: this engine's PUBLIC_URL).
    simulator_url: str | None = None
    # Calls to the addresses tenants give (Evolution and WuzAPI gateways) refuse hosts that are
    # not on the public internet; true lets them reach private ones (local development).
    outbound_allow_private: bool = False
    sender_batch_size: int = Field(default=200, ge=1)
    sender_concurrency: int = Field(default=128, ge=1)
    sender_batches_in_flight: int = Field(default=3, ge=1)
    send_max_attempts: int = Field(default=5, ge=1)
    send_backoff_base_seconds: float = 1.0
    send_backoff_max_seconds: float = 300.0
    # How long a message may stay claimed, or sent with its answer lost, before it ends failed
    # with reason unknown_outcome (receipts that arrive in time settle it instead).
    send_outcome_grace_seconds: float = 120.0
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

    log_level: str = Field(default="INFO")

    @property
    def is_embedded(self) -> bool:
        """True when streams live in the database instead of Redis."""
        return not self.redis_url


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
