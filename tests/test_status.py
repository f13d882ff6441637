from __future__ import annotations

import json

import pytest

from airflow_provider_avatar.status import TaskState, TaskStatus, Verdict, judge, redact_url, state_set

S, F = TaskState.SUCCEEDED, TaskState.FAILED


def _status(state: TaskState, **kw: object) -> TaskStatus:
    return TaskStatus(service="scenext", remote_task_id="1", state=state, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "targets", "failures", "verdict"),
    [
        (S, {S}, {F}, Verdict.DONE),
        (F, {S}, {F}, Verdict.FAILED),
        (TaskState.RUNNING, {S}, {F}, Verdict.WAIT),
        (TaskState.UNKNOWN, {S}, {F}, Verdict.WAIT),
        (TaskState.STREAMING, {TaskState.STREAMING}, {F, TaskState.STOPPED}, Verdict.DONE),
        (TaskState.STOPPED, {TaskState.STREAMING}, {F, TaskState.STOPPED}, Verdict.FAILED),
        (TaskState.STOPPED, {TaskState.STOPPED}, {F}, Verdict.DONE),
        # an overlap never reports success for a failure state
        (F, {S, F}, {F}, Verdict.FAILED),
    ],
)
def test_judge(state: TaskState, targets: set[TaskState], failures: set[TaskState], verdict: Verdict) -> None:
    assert judge(_status(state), frozenset(targets), frozenset(failures)) is verdict


def test_state_coercion_is_case_insensitive_and_names_choices() -> None:
    assert state_set(["succeeded", "Streaming"]) == {S, TaskState.STREAMING}
    assert state_set("FAILED") == {F}
    assert state_set(None) == frozenset()
    with pytest.raises(ValueError, match="expected one of"):
        TaskState.coerce("DONE")


def test_to_dict_is_json_and_round_trips_without_url_signature() -> None:
    status = _status(
        S,
        video_url="https://cdn.example/v.mp4?Expires=1&Signature=SECRETSIG",
        result={"w": 1},
        raw_status="COMPLETED",
        progress=1.0,
        request_id="r1",
    )
    data = json.loads(json.dumps(status.to_dict()))
    assert data["state"] == "SUCCEEDED"
    assert data["video_url"] == "https://cdn.example/v.mp4"
    assert "SECRETSIG" not in json.dumps(data)
    back = TaskStatus.from_dict({**data, "future_field": 1})
    assert back.state is S and back.result == {"w": 1} and back.request_id == "r1"


def test_from_dict_rejects_non_status() -> None:
    with pytest.raises(ValueError, match="missing"):
        TaskStatus.from_dict({"path": "/x"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@host/a.mp4?sig=1#frag", "https://host/a.mp4"),
        ("http://host/a", "http://host/a"),
        (None, None),
    ],
)
def test_redact_url(url: str | None, expected: str | None) -> None:
    assert redact_url(url) == expected
