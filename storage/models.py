"""The SQLModel classes of every table, in one import (`from storage.models import Job`).

Each table comes as `XBase` (shared fields), `XCreate` (what a caller passes to create one)
and `X` (the table). The definitions live in `storage.tables`, a module per area; this module
re-exports exactly its public names.
"""

from storage import tables
from storage.tables import *  # noqa: F403  (the point of this module)

__all__ = list(tables.__all__)
