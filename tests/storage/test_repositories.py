import pytest

from storage import accounts, activity, datasets, model_records, queue
from storage.errors import Conflict, NotFound, StorageError
from storage.tables import (
    AuditEntryCreate,
    DatasetCreate,
    EvaluationRunCreate,
    FeedbackCreate,
    JobCreate,
    RegisteredModelCreate,
    ScheduleCreate,
)


def make_dataset(session, workspace, name="tickets", **fields):
    values = {"file_name": f"{name}.csv", "sha256": "ab" * 32, "stored_path": f"/d/{name}.csv",
              "task": "classify", "columns": ["text", "label"], "uploader": "U1"}
    values.update(fields)
    return datasets.create_dataset(session=session, dataset_in=DatasetCreate(
        workspace_id=workspace.id, name=name, **values))


def make_model(session, workspace, name="support-v1", task="classify", **fields):
    values = {"base": "minilm", "method": "lora", "path": f"/a/{name}", "labels": ["a", "b"],
              "metrics": {"accuracy": 0.9}, "creator": "U1"}
    values.update(fields)
    return model_records.register_model(session=session, model_in=RegisteredModelCreate(
        workspace_id=workspace.id, name=name, task=task, **values))


def test_errors_share_one_base():
    assert issubclass(NotFound, StorageError) and issubclass(Conflict, StorageError)


def test_datasets(session, workspace):
    first = make_dataset(session, workspace, validation_report={"rows": 10, "problems": []},
                         n_rows=10)
    assert first.id and first.columns == ["text", "label"] and first.created_at.tzinfo
    assert first.validation_report == {"rows": 10, "problems": []}
    second = make_dataset(session, workspace, "reviews", task="chat", sha256="cd" * 32)
    with pytest.raises(Conflict, match="tickets"):
        make_dataset(session, workspace)
    assert datasets.get_dataset(session=session, workspace_id=workspace.id,
                                ref="tickets").id == first.id
    assert datasets.get_dataset(session=session, workspace_id=workspace.id,
                                ref=str(second.id)).id == second.id
    assert datasets.get_dataset(session=session, workspace_id=workspace.id,
                                ref=second.id).name == "reviews"
    listed = datasets.list_datasets(session=session, workspace_id=workspace.id)
    assert [d.name for d in listed] == ["reviews", "tickets"]
    assert [d.name for d in datasets.list_datasets(
        session=session, workspace_id=workspace.id, task="chat")] == ["reviews"]
    assert datasets.find_dataset_by_sha256(
        session=session, workspace_id=workspace.id, sha256="cd" * 32).id == second.id
    removed = datasets.delete_dataset(session=session, workspace_id=workspace.id, ref="reviews")
    assert removed.stored_path == "/d/reviews.csv"
    with pytest.raises(NotFound, match="reviews"):
        datasets.get_dataset(session=session, workspace_id=workspace.id, ref="reviews")


def test_a_numeric_name_wins_over_an_id(session, workspace):
    numbered = make_dataset(session, workspace, "a")
    named = make_dataset(session, workspace, str(numbered.id + 100))
    assert datasets.get_dataset(session=session, workspace_id=workspace.id,
                                ref=str(numbered.id + 100)).id == named.id


def test_models_register_promote_delete(session, workspace):
    v1 = make_model(session, workspace)
    v2 = make_model(session, workspace, "support-v2")
    chat = make_model(session, workspace, "helper", task="chat", labels=None)
    with pytest.raises(Conflict, match="support-v1"):
        make_model(session, workspace)
    assert model_records.get_promoted_model(session=session, workspace_id=workspace.id,
                                       task="classify") is None
    assert model_records.promote_model(session=session, workspace_id=workspace.id,
                                  ref="support-v1").promoted_for == "classify"
    model_records.promote_model(session=session, workspace_id=workspace.id, ref="helper")
    promoted = model_records.promote_model(session=session, workspace_id=workspace.id, ref=v2.id)
    assert promoted.id == v2.id
    assert model_records.get_promoted_model(session=session, workspace_id=workspace.id,
                                       task="classify").id == v2.id
    assert model_records.get_model(session=session, workspace_id=workspace.id,
                              ref="support-v1").promoted_for is None
    assert model_records.get_promoted_model(session=session, workspace_id=workspace.id,
                                       task="chat").id == chat.id
    # promoting the promoted one again is harmless
    model_records.promote_model(session=session, workspace_id=workspace.id, ref=v2.id)
    assert [m.name for m in model_records.list_models(session=session, workspace_id=workspace.id,
                                                 task="classify")] == ["support-v2", "support-v1"]
    assert model_records.get_model(session=session, workspace_id=workspace.id, ref=v1.id).labels == \
        ["a", "b"]
    model_records.delete_model(session=session, workspace_id=workspace.id, ref="support-v2")
    assert model_records.get_promoted_model(session=session, workspace_id=workspace.id,
                                       task="classify") is None
    assert model_records.find_model(session=session, workspace_id=workspace.id, ref="support-v2") \
        is None


def test_evaluation_runs_outlive_their_model(session, workspace):
    model = make_model(session, workspace)
    dataset = make_dataset(session, workspace)
    job = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id,
                                                          kind="evaluate"))
    run = model_records.record_evaluation(session=session, run_in=EvaluationRunCreate(
        workspace_id=workspace.id, model_id=model.id, dataset_id=dataset.id, job_id=job.id,
        model_name=model.name, dataset_name=dataset.name, metrics={"accuracy": 0.8},
        plots={"confusion": "/p/c.png"}))
    assert model_records.list_evaluations(session=session, workspace_id=workspace.id,
                                     model_id=model.id)[0].id == run.id
    model_records.delete_model(session=session, workspace_id=workspace.id, ref=model.id)
    session.expire_all()
    kept = model_records.get_evaluation(session=session, workspace_id=workspace.id, run_id=run.id)
    assert kept.model_id is None and kept.model_name == "support-v1"
    assert kept.metrics == {"accuracy": 0.8} and kept.plots == {"confusion": "/p/c.png"}


def test_roles(session, workspace):
    assert accounts.get_role(session=session, workspace_id=workspace.id,
                             slack_user_id="U1") == "user"
    accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U1",
                      role="trainer", granted_by="U0")
    accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U2",
                      role="admin")
    user = accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U1",
                             role="admin", granted_by="U2")
    assert user.role == "admin" and user.granted_by == "U2"
    accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U3",
                      role="trainer")
    accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U4",
                      role="user")
    assert [(u.slack_user_id, u.role) for u in accounts.list_roles(
        session=session, workspace_id=workspace.id)] == \
        [("U1", "admin"), ("U2", "admin"), ("U3", "trainer")]
    assert len(accounts.list_roles(session=session, workspace_id=workspace.id,
                                   include_users=True)) == 4
    assert accounts.revoke_role(session=session, workspace_id=workspace.id, slack_user_id="U3")
    assert not accounts.revoke_role(session=session, workspace_id=workspace.id,
                                    slack_user_id="U3")
    with pytest.raises(ValueError, match="owner"):
        accounts.set_role(session=session, workspace_id=workspace.id, slack_user_id="U1",
                          role="owner")


def test_schedules(session, workspace):
    daily = activity.create_schedule(session=session, schedule_in=ScheduleCreate(
        workspace_id=workspace.id, channel_id="C1", kind="sentiment_report",
        spec="0 9 * * *", params={"channel": "C2"}, creator="U1"))
    hourly = activity.create_schedule(session=session, schedule_in=ScheduleCreate(
        workspace_id=workspace.id, channel_id="C1", kind="sentiment_report", spec="every 1h"))
    assert daily.enabled and daily.params == {"channel": "C2"}
    activity.disable_schedule(session=session, workspace_id=workspace.id, schedule_id=hourly.id)
    assert [s.id for s in activity.list_schedules(session=session)] == [daily.id]
    assert len(activity.list_schedules(session=session, workspace_id=workspace.id,
                                       enabled_only=False)) == 2
    activity.mark_schedule_run(session=session, schedule_id=daily.id)
    session.expire_all()
    assert activity.get_schedule(session=session, workspace_id=workspace.id,
                                 schedule_id=daily.id).last_run_at is not None
    with pytest.raises(ValueError, match="cron"):
        activity.create_schedule(session=session, schedule_in=ScheduleCreate(
            workspace_id=workspace.id, channel_id="C1", kind="x", spec=" "))


def test_feedback_and_audit(session, workspace):
    job = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id,
                                                          kind="chat"))
    activity.record_feedback(session=session, feedback_in=FeedbackCreate(
        workspace_id=workspace.id, job_id=job.id, user_id="U1", value="good"))
    activity.record_feedback(session=session, feedback_in=FeedbackCreate(
        workspace_id=workspace.id, channel_id="C1", message_ts="1.5", user_id="U2",
        value="bad", comment="wrong intent"))
    assert [f.value for f in activity.list_feedback(session=session,
                                                    workspace_id=workspace.id)] == ["bad", "good"]
    assert len(activity.list_feedback(session=session, workspace_id=workspace.id,
                                      job_id=job.id)) == 1
    with pytest.raises(ValueError, match="job id or a message"):
        activity.record_feedback(session=session, feedback_in=FeedbackCreate(
            workspace_id=workspace.id, user_id="U1", value="good"))

    activity.record_audit(session=session, entry_in=AuditEntryCreate(
        workspace_id=workspace.id, actor="U1", action="model.promote", target="support-v1",
        details={"task": "classify"}))
    activity.record_audit(session=session, entry_in=AuditEntryCreate(
        workspace_id=workspace.id, actor="U2", action="role.grant", target="U3"))
    entries = activity.list_audit(session=session, workspace_id=workspace.id)
    assert [e.action for e in entries] == ["role.grant", "model.promote"]
    assert entries[1].details == {"task": "classify"} and entries[1].at.tzinfo
    assert [e.actor for e in activity.list_audit(session=session, workspace_id=workspace.id,
                                                 action="model.promote")] == ["U1"]


def test_no_getter_returns_another_workspaces_row(session, workspace, other_workspace):
    dataset = make_dataset(session, other_workspace)
    model = make_model(session, other_workspace)
    job = queue.enqueue(session=session, job_in=JobCreate(workspace_id=other_workspace.id,
                                                          kind="x"))
    run = model_records.record_evaluation(session=session, run_in=EvaluationRunCreate(
        workspace_id=other_workspace.id, model_name="m"))
    schedule = activity.create_schedule(session=session, schedule_in=ScheduleCreate(
        workspace_id=other_workspace.id, channel_id="C", kind="k", spec="every 1h"))
    activity.record_feedback(session=session, feedback_in=FeedbackCreate(
        workspace_id=other_workspace.id, job_id=job.id, user_id="U", value="good"))
    activity.record_audit(session=session, entry_in=AuditEntryCreate(
        workspace_id=other_workspace.id, actor="U", action="a"))
    accounts.set_role(session=session, workspace_id=other_workspace.id, slack_user_id="U",
                      role="admin")
    model_records.promote_model(session=session, workspace_id=other_workspace.id, ref=model.id)
    mine = workspace.id

    for ref in (dataset.name, dataset.id, str(dataset.id)):
        with pytest.raises(NotFound):
            datasets.get_dataset(session=session, workspace_id=mine, ref=ref)
        with pytest.raises(NotFound):
            datasets.delete_dataset(session=session, workspace_id=mine, ref=ref)
    for ref in (model.name, model.id):
        with pytest.raises(NotFound):
            model_records.get_model(session=session, workspace_id=mine, ref=ref)
        with pytest.raises(NotFound):
            model_records.promote_model(session=session, workspace_id=mine, ref=ref)
        with pytest.raises(NotFound):
            model_records.delete_model(session=session, workspace_id=mine, ref=ref)
    with pytest.raises(NotFound):
        queue.get_job(session=session, job_id=job.id, workspace_id=mine)
    with pytest.raises(NotFound):
        model_records.get_evaluation(session=session, workspace_id=mine, run_id=run.id)
    with pytest.raises(NotFound):
        activity.get_schedule(session=session, workspace_id=mine, schedule_id=schedule.id)
    with pytest.raises(NotFound):
        activity.disable_schedule(session=session, workspace_id=mine, schedule_id=schedule.id)
    assert model_records.get_promoted_model(session=session, workspace_id=mine,
                                       task="classify") is None
    assert accounts.get_role(session=session, workspace_id=mine, slack_user_id="U") == "user"
    for listing in (datasets.list_datasets, model_records.list_models, model_records.list_evaluations,
                    activity.list_feedback, activity.list_audit, accounts.list_roles,
                    queue.list_jobs):
        assert listing(session=session, workspace_id=mine) == [], listing.__name__
    assert activity.list_schedules(session=session, workspace_id=mine) == []
    assert sum(queue.count_jobs(session=session, workspace_id=mine).values()) == 0
