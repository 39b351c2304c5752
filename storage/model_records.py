"""Fine-tuned models of a workspace as storage records them (registered, promoted, deleted),
and their evaluation runs. The engine's `ModelRegistry` reads them through the worker's
catalog."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from storage._rows import fresh, insert_row, read_only
from storage.datasets import ref_id, ref_name
from storage.db import begin_immediate, is_postgres
from storage.errors import NotFound
from storage.tables.accounts import Workspace
from storage.tables.assets import (
    EvaluationRun,
    EvaluationRunCreate,
    RegisteredModel,
    RegisteredModelCreate,
)


def register_model(*, session: Session, model_in: RegisteredModelCreate) -> RegisteredModel:
    """Record a model; raises `Conflict` when the workspace has one of that name."""
    return insert_row(session, RegisteredModel.model_validate(model_in),
                      conflict=f"a model named {model_in.name!r} exists already")


@read_only
def get_model(*, session: Session, workspace_id: int, ref: int | str,
              bare_ids: bool = True) -> RegisteredModel:
    """A model of the workspace; raises `NotFound`. As for data sets
    (`storage.datasets.get_dataset`): the int 12 and `#12` are the id 12 only, other text is
    a name, and with `bare_ids` a name of digits that no model has is read as an id."""
    scope = select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id)
    found = None
    if (name := ref_name(ref)) is not None:
        found = session.exec(fresh(scope.where(RegisteredModel.name == name))).one_or_none()
    if found is None and (row_id := ref_id(ref, bare_ids=bare_ids)) is not None:
        found = session.exec(fresh(scope.where(RegisteredModel.id == row_id))).one_or_none()
    if found is None:
        raise NotFound(f"no model {ref!r} in this workspace (see the list of models)")
    return found


@read_only
def find_model(*, session: Session, workspace_id: int, ref: int | str,
               bare_ids: bool = True) -> RegisteredModel | None:
    """`get_model`, or None (for callers that fall back to built-in models)."""
    try:
        return get_model(session=session, workspace_id=workspace_id, ref=ref, bare_ids=bare_ids)
    except NotFound:
        return None


@read_only
def list_models(*, session: Session, workspace_id: int, task: str | None = None,
                limit: int = 200) -> list[RegisteredModel]:
    """The workspace's models, newest first."""
    query = select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id)
    if task is not None:
        query = query.where(RegisteredModel.task == task)
    query = query.order_by(RegisteredModel.id.desc()).limit(limit)
    return list(session.exec(fresh(query)).all())


def promote_model(*, session: Session, workspace_id: int, ref: int | str) -> RegisteredModel:
    """Make the model the workspace default for its task, un-promoting the previous one."""
    begin_immediate(session)
    if is_postgres(session):  # serialise promotions within the workspace
        session.exec(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    model = get_model(session=session, workspace_id=workspace_id, ref=ref)
    session.execute(
        sa.update(RegisteredModel)
        .where(RegisteredModel.workspace_id == workspace_id,
               RegisteredModel.promoted_for == model.task, RegisteredModel.id != model.id)
        .values(promoted_for=None).execution_options(synchronize_session=False))
    model.promoted_for = model.task
    session.add(model)
    session.commit()
    session.refresh(model)
    return model


@read_only
def get_promoted_model(*, session: Session, workspace_id: int,
                       task: str) -> RegisteredModel | None:
    """The workspace's default model for `task`, or None."""
    return session.exec(fresh(select(RegisteredModel).where(
        RegisteredModel.workspace_id == workspace_id,
        RegisteredModel.promoted_for == task))).one_or_none()


def delete_model(*, session: Session, workspace_id: int, ref: int | str) -> RegisteredModel:
    """Remove the record (the caller removes the files); returns what was removed. Its
    evaluation runs stay, with their model name."""
    begin_immediate(session)
    model = get_model(session=session, workspace_id=workspace_id, ref=ref)
    session.delete(model)
    session.commit()
    return model


def record_evaluation(*, session: Session, run_in: EvaluationRunCreate) -> EvaluationRun:
    """Store one evaluation's metrics and plot paths."""
    return insert_row(session, EvaluationRun.model_validate(run_in),
                      conflict="the evaluation refers to a missing model, data set or job")


@read_only
def get_evaluation(*, session: Session, workspace_id: int, run_id: int) -> EvaluationRun:
    run = session.exec(fresh(select(EvaluationRun).where(
        EvaluationRun.workspace_id == workspace_id, EvaluationRun.id == run_id))).one_or_none()
    if run is None:
        raise NotFound(f"no evaluation run {run_id} in this workspace")
    return run


@read_only
def list_evaluations(*, session: Session, workspace_id: int, model_id: int | None = None,
                     limit: int = 50) -> list[EvaluationRun]:
    """The workspace's evaluation runs (of one model when given), newest first."""
    query = select(EvaluationRun).where(EvaluationRun.workspace_id == workspace_id)
    if model_id is not None:
        query = query.where(EvaluationRun.model_id == model_id)
    query = query.order_by(EvaluationRun.id.desc()).limit(limit)
    return list(session.exec(fresh(query)).all())
