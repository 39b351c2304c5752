"""Data sets, registered (fine-tuned) models and their evaluation runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from storage.columns import Base, created_field, json_field


class DatasetBase(Base):
    name: str
    file_name: str
    sha256: str
    stored_path: str
    task: str = Field(description="classify or chat")
    n_rows: int | None = None
    columns: list[str] = json_field(list)
    validation_report: dict[str, Any] = json_field(dict)
    uploader: str | None = Field(default=None, description="Slack user id, or None from the CLI")


class DatasetCreate(DatasetBase):
    workspace_id: int


class Dataset(DatasetBase, table=True):
    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_field()


class DatasetPublic(DatasetBase):
    """A data set as its readers see it."""

    id: int
    workspace_id: int
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON, with `created` beside `created_at`."""
        data = self.model_dump(mode="json")
        data["created"] = data["created_at"]
        return data


class RegisteredModelBase(Base):
    name: str
    task: str = Field(description="classify, chat or embed")
    base: str | None = None
    method: str | None = Field(default=None, description="lora, adalora, ia3, prefix, full")
    path: str
    labels: list[str] | None = json_field(None)
    metrics: dict[str, Any] = json_field(dict)
    params: dict[str, Any] = json_field(dict)
    creator: str | None = None


class RegisteredModelCreate(RegisteredModelBase):
    workspace_id: int
    job_id: int | None = None


class RegisteredModel(RegisteredModelBase, table=True):
    """A model made in a workspace (fine-tuned); `promoted_for` marks the workspace default."""

    __tablename__ = "models"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "name"),
        # NULLs are distinct, so this allows one promoted model per (workspace, task) only.
        sa.UniqueConstraint("workspace_id", "promoted_for"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    job_id: int | None = Field(default=None, foreign_key="jobs.id", ondelete="SET NULL")
    promoted_for: str | None = None
    created_at: datetime = created_field()


class ModelPublic(RegisteredModelBase):
    """A registered model as its readers see it; `promoted` when it is its workspace's
    default for its task."""

    id: int
    workspace_id: int
    job_id: int | None = None
    promoted_for: str | None = None
    created_at: datetime

    @property
    def promoted(self) -> bool:
        return self.promoted_for is not None

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON, with `created` beside `created_at`, and `promoted`."""
        data = self.model_dump(mode="json")
        data["created"] = data["created_at"]
        data["promoted"] = self.promoted
        return data


class EvaluationRunBase(Base):
    model_name: str
    dataset_name: str | None = None
    metrics: dict[str, Any] = json_field(dict)
    plots: dict[str, str] = json_field(dict)


class EvaluationRunCreate(EvaluationRunBase):
    workspace_id: int
    model_id: int | None = None
    dataset_id: int | None = None
    job_id: int | None = None


class EvaluationRun(EvaluationRunBase, table=True):
    """Metrics of one model on one data set; names are kept when the rows are deleted."""

    __tablename__ = "evaluation_runs"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    model_id: int | None = Field(
        default=None, foreign_key="models.id", ondelete="SET NULL", index=True)
    dataset_id: int | None = Field(default=None, foreign_key="datasets.id", ondelete="SET NULL")
    job_id: int | None = Field(default=None, foreign_key="jobs.id", ondelete="SET NULL")
    created_at: datetime = created_field()
