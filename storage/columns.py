"""Column types and the declarative base shared by every table.

Timestamps are timezone-aware UTC in Python on both backends: PostgreSQL stores `timestamptz`;
SQLite has no time zone, so values are stored as naive UTC text and come back tagged UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# Stable constraint names, so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """`DateTime(timezone=True)` that always hands back aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage keeps timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(SQLModel):
    """Declarative base of the storage tables, with its own metadata (not SQLModel's global)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def created_field() -> datetime:
    """A `created_at`-style column filled with the current UTC time."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def time_field(*, index: bool = False) -> datetime | None:
    """A nullable timestamp column."""
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


def json_field(default_factory=dict, *, nullable: bool = False):
    """A JSON column (plain SQL JSON: works on SQLite and PostgreSQL)."""
    if default_factory is None:
        return Field(default=None, sa_type=sa.JSON, nullable=True)
    return Field(default_factory=default_factory, sa_type=sa.JSON, nullable=nullable)
