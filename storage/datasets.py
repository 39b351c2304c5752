"""Data sets uploaded to Slack or given to the CLI (the file lives at `stored_path`)."""

from __future__ import annotations

from sqlmodel import Session, select

from storage._rows import as_id, fresh, insert_row, read_only
from storage.db import begin_immediate
from storage.errors import NotFound
from storage.tables.assets import Dataset, DatasetCreate


def create_dataset(*, session: Session, dataset_in: DatasetCreate) -> Dataset:
    """Record a data set; raises `Conflict` when the workspace has one of that name."""
    return insert_row(session, Dataset.model_validate(dataset_in),
                      conflict=f"a data set named {dataset_in.name!r} exists already")


@read_only
def get_dataset(*, session: Session, workspace_id: int, ref: int | str) -> Dataset:
    """A data set of the workspace by name, else by id; raises `NotFound`."""
    scope = select(Dataset).where(Dataset.workspace_id == workspace_id)
    found = None
    if isinstance(ref, str):
        found = session.exec(fresh(scope.where(Dataset.name == ref))).one_or_none()
    if found is None and (row_id := as_id(ref)) is not None:
        found = session.exec(fresh(scope.where(Dataset.id == row_id))).one_or_none()
    if found is None:
        raise NotFound(f"no data set {ref!r} in this workspace (see the list of data sets)")
    return found


@read_only
def find_dataset_by_sha256(*, session: Session, workspace_id: int, sha256: str) -> Dataset | None:
    """The workspace's data set with this content, if it was uploaded before."""
    return session.exec(fresh(select(Dataset).where(
        Dataset.workspace_id == workspace_id, Dataset.sha256 == sha256)
        .order_by(Dataset.id))).first()


@read_only
def list_datasets(*, session: Session, workspace_id: int, task: str | None = None,
                  limit: int = 100) -> list[Dataset]:
    """The workspace's data sets, newest first."""
    query = select(Dataset).where(Dataset.workspace_id == workspace_id)
    if task is not None:
        query = query.where(Dataset.task == task)
    return list(session.exec(fresh(query.order_by(Dataset.id.desc()).limit(limit))).all())


def delete_dataset(*, session: Session, workspace_id: int, ref: int | str) -> Dataset:
    """Remove the record (the caller removes the file); returns what was removed."""
    begin_immediate(session)
    dataset = get_dataset(session=session, workspace_id=workspace_id, ref=ref)
    session.delete(dataset)
    session.commit()
    return dataset
