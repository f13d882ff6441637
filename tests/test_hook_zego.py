"""ZegoDigitalHumanHook through requests-mock: signing on the wire, create reconciliation, stop idempotency."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests_mock as rm

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarInputError,
    AvatarInvalidRequestError,
    AvatarSubmitUnknownError,
    AvatarTransientError,
)
from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook
from airflow_provider_avatar.protocols.zego import signature
from airflow_provider_avatar.services import SERVICES
from tests.conftest import SENTINEL_KEY

BASE = "https://zego.test"
APP_ID = "1234567890"

Answer = dict[str, Any] | Callable[[], dict[str, Any]]


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZEGO_DEFAULT",
        json.dumps({"conn_type": "zego", "host": BASE, "login": APP_ID, "password": SENTINEL_KEY}),
    )


@pytest.fixture(autouse=True)
def sleeps() -> Iterator[list[float]]:
    slept: list[float] = []
    with mock.patch("tenacity.nap.time.sleep", side_effect=slept.append):
        yield slept


def ok(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"json": {"Code": 0, "Message": "success", "RequestId": "r-ok", "Data": data or {}}}


def code(number: int, message: str = "error") -> dict[str, Any]:
    return {"json": {"Code": number, "Message": message, "RequestId": f"r-{number}"}}


class Zego:
    """Answers by Action, each a queue of requests-mock responses; records (action, params, body)."""

    def __init__(self, mocker: rm.Mocker) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.sent: list[tuple[str, dict[str, str], Any]] = []
        mocker.post(BASE, json=self._reply)

    def on(self, action: str, *answers: dict[str, Any]) -> None:
        self.answers.setdefault(action, []).extend(answers)

    def actions(self) -> list[str]:
        return [action for action, _, _ in self.sent]

    def _reply(self, request: Any, context: Any) -> Any:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        action = params["Action"]
        self.sent.append((action, params, request.json() if request.body else None))
        answer = self.answers[action].pop(0)
        if "exc" in answer:
            raise answer["exc"]
        context.status_code = answer.get("status_code", 200)
        return answer["json"]


@pytest.fixture
def zego(conn: None, requests_mock: rm.Mocker) -> Zego:
    return Zego(requests_mock)


def create(hook: ZegoDigitalHumanHook | None = None, **kwargs: Any) -> str:
    args = {"digital_human_id": "dh-1", "room_id": "room1", "stream_id": "stream1", **kwargs}
    return (hook or ZegoDigitalHumanHook()).create_stream(**args)


def test_requests_are_signed_on_the_wire_and_the_secret_never_sent(zego: Zego) -> None:
    zego.on("CreateDigitalHumanStreamTask", ok({"TaskId": "task-1"}))
    assert create() == "task-1"
    _, params, body = zego.sent[0]
    assert params["AppId"] == APP_ID and params["SignatureVersion"] == "2.0"
    assert len(params["SignatureNonce"]) == 16
    expected = signature(APP_ID, params["SignatureNonce"], SENTINEL_KEY, int(params["Timestamp"]))
    assert params["Signature"] == expected
    assert body["RTCConfig"] == {"RoomId": "room1", "StreamId": "stream1"}
    assert SENTINEL_KEY not in json.dumps(zego.sent)


def test_lost_create_answer_reconciles_by_stream_id_without_creating_again(zego: Zego) -> None:
    zego.on("CreateDigitalHumanStreamTask", {"exc": requests.exceptions.ReadTimeout})
    zego.on(
        "QueryDigitalHumanStreamTasks",
        ok(
            {
                "TaskList": [
                    {"TaskId": "other", "StreamId": "x", "Status": 3},
                    {"TaskId": "task-9", "RoomId": "room1", "StreamId": "stream1", "Status": 1},
                ]
            }
        ),
    )
    assert create() == "task-9"
    assert zego.actions() == ["CreateDigitalHumanStreamTask", "QueryDigitalHumanStreamTasks"]


def test_lost_create_that_never_landed_is_sent_once_more(zego: Zego) -> None:
    """StreamId is unique per AppId, so a second create cannot start a second stream."""
    zego.on("CreateDigitalHumanStreamTask", {"status_code": 502, "json": {}}, ok({"TaskId": "task-2"}))
    zego.on("QueryDigitalHumanStreamTasks", ok({"TaskList": []}))
    assert create() == "task-2"
    assert zego.actions() == [
        "CreateDigitalHumanStreamTask",
        "QueryDigitalHumanStreamTasks",
        "CreateDigitalHumanStreamTask",
    ]


def test_second_create_that_collides_re_attaches(zego: Zego) -> None:
    zego.on(
        "CreateDigitalHumanStreamTask", {"exc": requests.exceptions.ReadTimeout}, code(400000015, "stream id exists")
    )
    zego.on(
        "QueryDigitalHumanStreamTasks",
        ok({"TaskList": []}),  # not listed yet
        ok({"TaskList": [{"TaskId": "task-3", "RoomId": "room1", "StreamId": "stream1", "Status": 1}]}),
    )
    assert create() == "task-3"
    assert zego.actions().count("CreateDigitalHumanStreamTask") == 2


def test_twice_lost_create_fails_without_airflow_retry(zego: Zego) -> None:
    zego.on(
        "CreateDigitalHumanStreamTask",
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": requests.exceptions.ReadTimeout},
    )
    zego.on("QueryDigitalHumanStreamTasks", ok({"TaskList": []}), ok({"TaskList": []}))
    with pytest.raises(AvatarSubmitUnknownError):
        create()
    assert zego.actions().count("CreateDigitalHumanStreamTask") == 2


def test_stream_id_in_use_re_attaches_to_the_running_task(zego: Zego) -> None:
    """An Airflow retry of the create task (same default StreamId) finds the first try's stream."""
    zego.on("CreateDigitalHumanStreamTask", code(400000015, "stream id already exists"))
    zego.on(
        "QueryDigitalHumanStreamTasks",
        ok({"TaskList": [{"TaskId": "task-1", "RoomId": "room1", "StreamId": "stream1", "Status": 3}]}),
    )
    assert create() == "task-1"


def test_stream_id_in_use_in_another_room_is_not_taken_over(zego: Zego) -> None:
    """Re-attaching there would let this DAG's teardown stop somebody else's stream."""
    zego.on("CreateDigitalHumanStreamTask", code(400000015, "stream id already exists"))
    zego.on(
        "QueryDigitalHumanStreamTasks",
        ok({"TaskList": [{"TaskId": "theirs", "RoomId": "production-room", "StreamId": "stream1", "Status": 3}]}),
    )
    with pytest.raises(AvatarInvalidRequestError, match="another room"):
        create()


def test_stream_id_in_use_by_an_ended_task_asks_for_another(zego: Zego) -> None:
    zego.on("CreateDigitalHumanStreamTask", code(400000015, "stream id already exists"))
    zego.on("QueryDigitalHumanStreamTasks", ok({"TaskList": []}))
    with pytest.raises(AvatarInvalidRequestError, match="use another StreamId") as info:
        create()
    assert info.value.code == "400000015"


def test_concurrency_limit_on_create_is_retried(zego: Zego) -> None:
    """400000008 is a refusal: repeating the create cannot start a second stream."""
    zego.on("CreateDigitalHumanStreamTask", code(400000008, "concurrency limit"), ok({"TaskId": "task-4"}))
    assert create() == "task-4"
    assert zego.actions() == ["CreateDigitalHumanStreamTask"] * 2


def test_bad_input_sends_nothing(zego: Zego) -> None:
    with pytest.raises(AvatarInputError, match="stream_id"):
        create(stream_id="has space")
    assert zego.sent == []


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (ok(), "stopped"),
        (code(400000007, "already stopped"), "already_stopped"),
        (code(400000005, "not found"), "not_found"),
    ],
)
def test_stop_is_idempotent(zego: Zego, answer: dict[str, Any], outcome: str) -> None:
    zego.on("StopDigitalHumanStreamTask", answer)
    zego.on("QueryDigitalHumanStreamTasks", ok({"TaskList": [{"TaskId": "other", "StreamId": "s", "Status": 3}]}))
    assert ZegoDigitalHumanHook().stop_stream("task-1") == outcome
    assert zego.sent[0][2] == {"TaskId": "task-1"}


def test_stop_not_found_for_a_listed_stream_asks_again(zego: Zego) -> None:
    """ "Not found" is success only once the running-task list confirms nothing runs under that id."""
    zego.on("StopDigitalHumanStreamTask", code(400000005), ok())
    zego.on("QueryDigitalHumanStreamTasks", ok({"TaskList": [{"TaskId": "task-1", "StreamId": "s", "Status": 1}]}))
    assert ZegoDigitalHumanHook().stop_stream("task-1") == "stopped"
    assert zego.actions() == [
        "StopDigitalHumanStreamTask",
        "QueryDigitalHumanStreamTasks",
        "StopDigitalHumanStreamTask",
    ]


def test_stop_whose_answer_was_lost_is_repeated_and_then_already_stopped(zego: Zego) -> None:
    zego.on("StopDigitalHumanStreamTask", {"exc": requests.exceptions.ConnectionError}, code(400000007))
    assert ZegoDigitalHumanHook().stop_stream("task-1") == "already_stopped"


def test_stop_with_bad_credentials_fails(zego: Zego) -> None:
    zego.on("StopDigitalHumanStreamTask", code(100000005, "signature error"))
    with pytest.raises(AvatarAuthError, match="signature") as info:
        ZegoDigitalHumanHook().stop_stream("task-1")
    assert SENTINEL_KEY not in str(info.value)


def test_drive_retries_only_refusals(zego: Zego) -> None:
    zego.on("DriveByText", code(400000006, "stream not started"), ok({"DriveId": "d-1"}))
    assert ZegoDigitalHumanHook().drive_by_text("task-1", text="hi", timbre_id="t") == "d-1"
    zego.on("DriveByText", {"status_code": 503, "json": {}})
    with pytest.raises(AvatarTransientError):  # may have been spoken: not repeated
        ZegoDigitalHumanHook().drive_by_text("task-1", text="hi", timbre_id="t")
    assert zego.actions() == ["DriveByText"] * 3


@pytest.mark.parametrize("login", [None, "", "app", "99999999999", "-1"])
def test_app_id_must_be_a_uint32(monkeypatch: pytest.MonkeyPatch, login: str | None) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZEGO_DEFAULT", json.dumps({"conn_type": "zego", "login": login, "password": SENTINEL_KEY})
    )
    with pytest.raises(AvatarInputError, match="login") as info:
        ZegoDigitalHumanHook().config  # noqa: B018
    assert SENTINEL_KEY not in str(info.value)


def test_app_id_is_sent_as_validated(zego: Zego, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZEGO_DEFAULT",
        json.dumps({"conn_type": "zego", "host": BASE, "login": f" {APP_ID} ", "password": SENTINEL_KEY}),
    )
    zego.on("StopDigitalHumanStreamTask", ok())
    ZegoDigitalHumanHook().stop_stream("task-1")
    params = zego.sent[0][1]
    assert params["AppId"] == APP_ID
    assert params["Signature"] == signature(APP_ID, params["SignatureNonce"], SENTINEL_KEY, int(params["Timestamp"]))


def test_default_host_and_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZEGO_DEFAULT", json.dumps({"conn_type": "zego", "login": APP_ID, "password": SENTINEL_KEY})
    )
    config = ZegoDigitalHumanHook().config
    # the production host (named in the service registry; a test never names a real host)
    assert (config.base_url, config.max_qps) == (SERVICES["zego"].default_base_url, 10.0)
    assert config.base_url.startswith("https://")
    assert SENTINEL_KEY not in repr(config)


@pytest.mark.parametrize(
    ("answer", "ok_"),
    [
        (ok({"TaskList": []}), True),
        (code(100000005, "signature error"), False),
        (code(400000002, "not enabled"), False),
    ],
)
def test_test_connection_queries_running_tasks(zego: Zego, answer: dict[str, Any], ok_: bool) -> None:
    zego.on("QueryDigitalHumanStreamTasks", answer)
    passed, message = ZegoDigitalHumanHook().test_connection()
    assert passed is ok_, message
    assert zego.actions() == ["QueryDigitalHumanStreamTasks"]
    assert SENTINEL_KEY not in message
