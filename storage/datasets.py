"""Data sets uploaded to Slack or given to the CLI (the file lives at `stored_path`)."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from storage._rows import fresh, insert_row, read_only
from storage.db import begin_immediate
from storage.errors import NotFound
from storage.tables.assets import Dataset, DatasetCreate

MAX_ID = 2**63 - 1  # the largest row id a database holds (SQLite's rowid, a BIGINT)
_DIGITS = re.compile(r"[0-9]{1,19}")


def ref_id(ref: int | str, *, bare_ids: bool = False) -> int | None:
    """The row id a reference names, or None when it names none: the int 12 and `#12` are
    the id 12, and with `bare_ids` so is `12`. Ids past `MAX_ID` name nothing."""
    if isinstance(ref, int):
        return ref if 0 < ref <= MAX_ID else None
    text = ref[1:] if ref.startswith("#") else ref if bare_ids else ""
    return int(text) if _DIGITS.fullmatch(text) and 0 < int(text) <= MAX_ID else None


def ref_name(ref: int | str) -> str | None:
    """The name a reference gives: any text but `#<digits>` (which is an id only)."""
    if isinstance(ref, int) or (ref.startswith("#") and ref[1:].isascii()
                                and ref[1:].isdigit()):
        return None
    return ref


def create_dataset(*, session: Session, dataset_in: DatasetCreate) -> Dataset:
    """Record a data set; raises `Conflict` when the workspace has one of that name."""
    return insert_row(session, Dataset.model_validate(dataset_in),
                      conflict=f"a data set named {dataset_in.name!r} exists already")


@read_only
def get_dataset(*, session: Session, workspace_id: int, ref: int | str,
                bare_ids: bool = True) -> Dataset:
    """A data set of the workspace; raises `NotFound`. The int 12 and `#12` name the id 12
    and only that id; any other text is a name. With `bare_ids` a name of digits that no data
    set has is read as an id (`12`); the bot passes False, so that a data set named "12" can
    never stand in for id 12 nor the other way round."""
    scope = select(Dataset).where(Dataset.workspace_id == workspace_id)
    found = None
    if (name := ref_name(ref)) is not None:
        found = session.exec(fresh(scope.where(Dataset.name == name))).one_or_none()
    if found is None and (row_id := ref_id(ref, bare_ids=bare_ids)) is not None:
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
