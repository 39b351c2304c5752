"""The storage package's exceptions: one base class, so callers catch one thing."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error storage raises on purpose; its message is meant for the user."""


class NotFound(StorageError):
    """No row with that id or name in this workspace."""


class Conflict(StorageError):
    """The change clashes with another row (a taken name) or with the row's state."""


class MigrationError(StorageError):
    """The database schema could not be brought to the wanted revision."""
