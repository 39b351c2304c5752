"""Everything the bot and the workers share: SQLModel tables, repository functions, the job
queue and change notification. SQLite (WAL) by default, PostgreSQL for many processes.

Modules:
- `storage.tables`: every table class (`XBase` / `XCreate` / `X`), a module per area;
- `storage.db`: `make_engine(url)`, `session_scope(engine)`;
- `storage.migrate`: `upgrade(url)`, `downgrade(url, "base")` (Alembic, in `storage/migrations`);
- `storage.queue`: `enqueue`, `claim`, `heartbeat`, `set_progress`, `finish`, `fail`,
  `request_cancel`, `mark_cancelled`, `release`, `requeue_stalled`, `get_job`, `list_jobs`;
- `storage.retry`: `RetryPolicy`; `storage.notify`: `JobWatcher`, `watch_jobs`;
- `storage.accounts` (workspaces, roles), `storage.datasets`, `storage.model_records` (models,
  evaluation runs), `storage.activity` (schedules, feedback, audit log);
- `storage.errors`: `StorageError` and its subclasses.

Repository functions take keyword-only arguments and an explicit session, and commit.
This package imports neither `bot`, `engine` nor `lmops`.
"""

from storage.errors import Conflict, MigrationError, NotFound, StorageError

__all__ = ["Conflict", "MigrationError", "NotFound", "StorageError"]
