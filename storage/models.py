"""The SQLModel classes of every table, in one import (`from storage.models import Job`).

Each table comes as `XBase` (shared fields), `XCreate` (what a caller passes to create one)
and `X` (the table). The definitions live in `storage.tables`, a module per area.
"""

from storage.tables import *
from storage.tables import __all__  # noqa: F401
