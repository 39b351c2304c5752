"""The composition root's shared wiring: settings, the database (migrated on first use) and the
model registry of the `local` workspace that the CLI works in."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from engine.registry import ModelRegistry
from engine.settings import Settings, get_settings


@dataclass
class Local:
    """Lazily opened resources for one CLI invocation."""

    settings: Settings

    @cached_property
    def db(self):
        from storage.db import make_engine

        self.settings.home.mkdir(parents=True, exist_ok=True)
        upgrade_if_needed(self.settings.database_url)
        return make_engine(self.settings.database_url)

    @cached_property
    def workspace_id(self) -> int:
        from storage.accounts import get_local_workspace
        from storage.db import session_scope

        with session_scope(self.db) as session:
            return get_local_workspace(session=session).id

    @cached_property
    def registry(self) -> ModelRegistry:
        from engine.worker import StorageCatalog

        return ModelRegistry(catalog=StorageCatalog(self.db, self.workspace_id, creator="cli"))


def local(settings: Settings | None = None) -> Local:
    return Local(settings or get_settings())


def upgrade_if_needed(url: str) -> bool:
    """Apply migrations unless the database is at the newest revision; True if it upgraded."""
    from storage import migrate

    if migrate.current_revision(url) == migrate.head_revision():
        return False
    migrate.upgrade(url)
    return True
