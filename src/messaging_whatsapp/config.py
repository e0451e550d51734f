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
    worker_batch_size: int = 500
    worker_block_ms: int = 1000
    instance_cache_ttl_seconds: float = 300.0

    log_level: str = Field(default="INFO")

    @property
    def is_embedded(self) -> bool:
        """True when streams live in the database instead of Redis."""
        return not self.redis_url


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
