"""Service and command-line settings, read from ``SUYUAN_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_VAR", "Settings", "get_settings"]

DEFAULT_VAR = Path(__file__).resolve().parent.parent / "var"
DEVELOPMENT_SECRET = "development-only-secret-do-not-deploy"


class Settings(BaseSettings):
    """Where the log lives and which key signs it; every field is ``SUYUAN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SUYUAN_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR / 'suyuan.db'}",
        description="sqlite:///PATH for the embedded default, or a postgresql:// URL",
    )
    log_key_file: Path = Field(
        default=DEFAULT_VAR / "log.key",
        description="C2SP signer key of the log (created if missing)",
    )
    log_origin: str = Field(default="suyuan.local/log", description="the checkpoint origin line")
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="resolver base for QR labels"
    )
    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses the development secret"
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET),
        description="encrypts custodial signing keys at rest; set a long random value",
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="request body limit")
    rate_limit_per_minute: int = Field(default=1200, ge=1, description="requests per API key")
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    cors_origins: list[str] = Field(default_factory=list, description="empty: CORS off")
    passport_cache_size: int = Field(
        default=4096, ge=0, description="public passports kept ready per worker process"
    )
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    keep_alive_seconds: int = Field(
        default=5, ge=1, description="how long an idle client connection stays open (uvicorn)"
    )

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key.get_secret_value() == DEVELOPMENT_SECRET
            or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError(
                "SUYUAN_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
