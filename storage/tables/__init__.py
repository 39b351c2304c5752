"""Every storage table, imported here so `Base.metadata` knows them all (Alembic uses it)."""

from storage.columns import Base
from storage.tables.accounts import (
    LOCAL_TEAM_ID,
    ROLES,
    User,
    UserBase,
    Workspace,
    WorkspaceBase,
    WorkspaceCreate,
)
from storage.tables.activity import (
    AuditEntry,
    AuditEntryBase,
    AuditEntryCreate,
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
    EvaluationRun,
    EvaluationRunBase,
    EvaluationRunCreate,
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
    JobStatus,
)

metadata = Base.metadata

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "FINAL_STATUSES",
    "LOCAL_TEAM_ID",
    "ROLES",
    "AuditEntry",
    "AuditEntryBase",
    "AuditEntryCreate",
    "Base",
    "Dataset",
    "DatasetBase",
    "DatasetCreate",
    "EvaluationRun",
    "EvaluationRunBase",
    "EvaluationRunCreate",
    "Feedback",
    "FeedbackBase",
    "FeedbackCreate",
    "Job",
    "JobBase",
    "JobCreate",
    "JobStatus",
    "RegisteredModel",
    "RegisteredModelBase",
    "RegisteredModelCreate",
    "Schedule",
    "ScheduleBase",
    "ScheduleCreate",
    "User",
    "UserBase",
    "Workspace",
    "WorkspaceBase",
    "WorkspaceCreate",
    "metadata",
]
