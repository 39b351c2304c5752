"""Configuration from the environment (and a `.env` file), read once at an entry point.

`Settings` lives in the engine because every other package may import the engine's torch-free
modules, while the engine may import none of them (ARCHITECTURE.md section 1). Field names are
the environment variables of the public contract, lower-cased.

The data folder (`LMOPS_HOME`) defaults to one per-user place, whatever the current directory:
platformdirs' user data folder (`$XDG_DATA_HOME/lmops`, else `~/.local/share/lmops` on Linux;
`~/Library/Application Support/lmops` on macOS; `%LOCALAPPDATA%\\lmops` on Windows), the way
HuggingFace keeps one cache, so the CLI finds the same models and database from any folder.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """The per-user data folder used when `LMOPS_HOME` is unset (read when settings are built,
    so `XDG_DATA_HOME` set later still counts)."""
    return platformdirs.user_data_path("lmops", appauthor=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    lmops_home: Path = Field(default_factory=default_home)
    lmops_artifacts: Path | None = None
    lmops_database_url: str | None = None
    lmops_admins: str = ""
    lmops_hub_models: str = ""  # hub ids Slack may name (comma-separated); see engine.registry
    lmops_port: int = Field(default=3000, ge=0, le=65535)
    # `lmops serve`'s interface: all interfaces, as a container needs; 127.0.0.1 behind a proxy
    lmops_host: str = "0.0.0.0"
    lmops_heartbeat_timeout: float = Field(default=30.0, gt=0)

    @field_validator("lmops_home")
    @classmethod
    def _expand_user(cls, home: Path) -> Path:
        return home.expanduser()

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, url: str) -> str:
        return url if url.endswith("/") else url + "/"

    @property
    def home(self) -> Path:
        return self.lmops_home

    @property
    def artifacts(self) -> Path:
        return self.lmops_artifacts or self.lmops_home / "artifacts"

    @property
    def database_url(self) -> str:
        return self.lmops_database_url or f"sqlite:///{self.lmops_home.resolve() / 'lmops.db'}"

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.lmops_admins.split(",") if u.strip())

    @property
    def models_dir(self) -> Path:
        """Fine-tuned models registered on this machine (the registry moves into storage later)."""
        return self.lmops_home / "models"

    @property
    def cache_dir(self) -> Path:
        """Converted copies of built-in models (SmolLM2 de-quantised to safetensors)."""
        return self.lmops_home / "cache"


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment; call it at an entry point, never at import."""
    return Settings(**overrides)
