"""Every storage table, imported here so `Base.metadata` knows them all (Alembic uses it),
and the read models beside them (`XPublic`, not tables): what a reader outside storage gets
for a row, with `to_public(value)` to convert what a repository function returns.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from storage.columns import Base
from storage.tables.accounts import (
    LOCAL_TEAM_ID,
    ROLES,
    User,
    UserBase,
    UserPublic,
    Workspace,
    WorkspaceBase,
    WorkspaceCreate,
)
from storage.tables.activity import (
    AuditEntry,
    AuditEntryBase,
    AuditEntryCreate,
    AuditEntryPublic,
    Feedback,
    FeedbackBase,
    FeedbackCreate,
    Schedule,
    ScheduleBase,
    ScheduleCreate,
)
from storage.tables.assets import (
    Dataset,
    DatasetBase,
    DatasetCreate,
    DatasetPublic,
    EvaluationRun,
    EvaluationRunBase,
    EvaluationRunCreate,
    ModelPublic,
    RegisteredModel,
    RegisteredModelBase,
    RegisteredModelCreate,
)
from storage.tables.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    FINAL_STATUSES,
    Job,
    JobBase,
    JobCreate,
    JobPublic,
    JobStatus,
)

metadata = Base.metadata

#: The read model of each table that has one.
PUBLIC_MODELS: dict[type[SQLModel], type[SQLModel]] = {
    Job: JobPublic,
    RegisteredModel: ModelPublic,
    Dataset: DatasetPublic,
    User: UserPublic,
    AuditEntry: AuditEntryPublic,
}


def to_public(value: Any) -> Any:
    """A table row as its read model (`Job` -> `JobPublic`...), a list or tuple of them
    item by item; anything else (None, counts, flags, rows without a read model) as it is."""
    if isinstance(value, list | tuple):
        return type(value)(to_public(v) for v in value)
    public = PUBLIC_MODELS.get(type(value))
    return public.model_validate(value) if public is not None else value


__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "FINAL_STATUSES",
    "LOCAL_TEAM_ID",
    "PUBLIC_MODELS",
    "ROLES",
    "AuditEntry",
    "AuditEntryBase",
    "AuditEntryCreate",
    "AuditEntryPublic",
    "Base",
    "Dataset",
    "DatasetBase",
    "DatasetCreate",
    "DatasetPublic",
    "EvaluationRun",
    "EvaluationRunBase",
    "EvaluationRunCreate",
    "Feedback",
    "FeedbackBase",
    "FeedbackCreate",
    "Job",
    "JobBase",
    "JobCreate",
    "JobPublic",
    "JobStatus",
    "ModelPublic",
    "RegisteredModel",
    "RegisteredModelBase",
    "RegisteredModelCreate",
    "Schedule",
    "ScheduleBase",
    "ScheduleCreate",
    "User",
    "UserBase",
    "UserPublic",
    "Workspace",
    "WorkspaceBase",
    "WorkspaceCreate",
    "metadata",
    "to_public",
]
