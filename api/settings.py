"""Service and command-line settings, read from ``SUYUAN_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_VAR", "Settings", "get_settings"]

DEFAULT_VAR = Path(__file__).resolve().parent.parent / "var"


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


@lru_cache
def get_settings() -> Settings:
    return Settings()
