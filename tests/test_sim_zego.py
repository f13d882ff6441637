"""The simulated ZEGO Digital Human streaming API, over real HTTP, on a fake clock where timing matters."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests

from airflow_provider_avatar.testing.sim_zego import DEFAULT_APP_ID, ZegoSim
from airflow_provider_avatar.testing.simulator import Simulator

#: The signature test vector (docs/services/zego.md): this simulator runs with its secret and clock.
SECRET = "0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000.0
VECTOR = {"AppId": "1234567890", "SignatureNonce": "15215528852396", "Timestamp": "1700000000"}
VECTOR_SIGNATURE = "f650dea5bece00500004f5841f2609c1"


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def _clocked() -> Iterator[tuple[Simulator, FakeClock]]:
    clock = FakeClock()
    with Simulator(api_keys={"zego": SECRET}, clock=clock) as simulator:
        yield simulator, clock


@pytest.fixture
def clock(_clocked: tuple[Simulator, FakeClock]) -> Iterator[FakeClock]:
    simulator, fake = _clocked
    simulator.reset()
    fake.now = T0
    yield fake
    simulator.reset()


@pytest.fixture
def zsim(_clocked: tuple[Simulator, FakeClock], clock: FakeClock) -> Simulator:
    return _clocked[0]


def zego(simulator: Simulator) -> ZegoSim:
    return cast(ZegoSim, simulator.services["zego"])


def sign(app_id: str, nonce: str, secret: str, timestamp: str) -> str:
    return hashlib.md5((app_id + nonce + secret + timestamp).encode()).hexdigest()


def call(
    simulator: Simulator,
    action: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    path: str = "",
    expect_http: int = 200,
    params: dict[str, str | None] | None = None,
    **overrides: str | None,
) -> dict[str, Any]:
    """POST one signed request; ``params``/``overrides`` replace (None = omit) the common query parameters."""
    params = {**(params or {}), **overrides}
    query: dict[str, str | None] = {
        "Action": action,
        "AppId": DEFAULT_APP_ID,
        "SignatureNonce": uuid.uuid4().hex[:16],
        "Timestamp": str(int(simulator.state.clock())),
        "SignatureVersion": "2.0",
    }
    query.update({k: v for k, v in params.items() if k != "Signature"})
    query["Signature"] = params.get(
        "Signature",
        sign(
            query["AppId"] or "",
            query["SignatureNonce"] or "",
            simulator.state.key_for("zego"),
            query["Timestamp"] or "",
        ),
    )
    data = raw if raw is not None else b"" if body is None else None
    response = requests.post(
        simulator.url("zego") + path,
        params={k: v for k, v in query.items() if v is not None},
        json=body if data is None else None,
        data=data,
        timeout=5,
    )
    assert response.status_code == expect_http, response.text
    answer: dict[str, Any] = response.json()
    uuid.UUID(answer["RequestId"])
    return answer


def create(simulator: Simulator, **overrides: Any) -> str:
    body = {
        "DigitalHumanConfig": {"DigitalHumanId": overrides.pop("human", "dh1")},
        "RTCConfig": {"RoomId": "room1", "StreamId": overrides.pop("stream", "stream1")},
        **overrides,
    }
    answer = call(simulator, "CreateDigitalHumanStreamTask", body)
    assert answer["Code"] == 0, answer
    return str(answer["Data"]["TaskId"])


def status(simulator: Simulator, task_id: str) -> int:
    """The task's Status, or the error Code when there is none."""
    answer = call(simulator, "GetDigitalHumanStreamTaskStatus", {"TaskId": task_id})
    return int(answer["Data"]["Status"]) if answer["Code"] == 0 else int(answer["Code"])


def drive(simulator: Simulator, task_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    body = {"TaskId": task_id, "Text": text, "TTSConfig": {"TimbreId": "t1"}, **extra}
    return call(simulator, "DriveByText", body)


# -- gateway: common parameters, signature, body ---------------------------------------------


def test_documented_signature_vector_is_accepted(zsim: Simulator) -> None:
    assert sign(VECTOR["AppId"], VECTOR["SignatureNonce"], SECRET, VECTOR["Timestamp"]) == VECTOR_SIGNATURE
    answer = call(zsim, "QueryDigitalHumanStreamTasks", params={**VECTOR, "Signature": VECTOR_SIGNATURE})
    assert (answer["Code"], answer["Message"], answer["Data"]) == (0, "success", {"TaskList": []})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"AppId": None}, 100000001),
        ({"AppId": "12ab"}, 100000001),
        ({"AppId": "-1"}, 100000001),
        ({"AppId": "999"}, 100000010),
        ({"Timestamp": None}, 100000002),
        ({"Timestamp": ""}, 100000002),
        ({"Timestamp": "17e8"}, 100000003),
        ({"Timestamp": "1_700_000_000"}, 100000003),
        ({"SignatureNonce": ""}, 100000008),
        ({"Signature": ""}, 100000009),
        ({"Signature": None}, 100000009),
        ({"SignatureVersion": ""}, 100000013),
        ({"SignatureVersion": "1.0"}, 100000014),
        ({"Action": ""}, 100000006),
        ({"Action": "DriveByAudio"}, 100000007),
        ({"Timestamp": str(int(T0) - 601)}, 100000004),
        ({"Timestamp": str(int(T0) + 601)}, 100000004),
        ({"Signature": "0" * 32}, 100000005),
        ({"Signature": sign(DEFAULT_APP_ID, "n", SECRET, str(int(T0))).upper(), "SignatureNonce": "n"}, 100000005),
        # checks run in ZEGO's order: the first failing parameter decides
        ({"AppId": "999", "Timestamp": ""}, 100000010),
        ({"Timestamp": "x", "SignatureNonce": ""}, 100000003),
        ({"Action": "Nope", "Timestamp": "1"}, 100000007),
        ({"Timestamp": "1", "Signature": "0" * 32}, 100000004),
    ],
)
def test_common_parameter_errors(zsim: Simulator, params: dict[str, str | None], code: int) -> None:
    answer = call(zsim, "QueryDigitalHumanStreamTasks", params=params)
    assert answer["Code"] == code and answer["Message"] and "Data" not in answer


def test_timestamp_within_ten_minutes_and_trailing_slash_path(zsim: Simulator) -> None:
    for skew in (-600, 600):
        assert call(zsim, "QueryDigitalHumanStreamTasks", Timestamp=str(int(T0) + skew))["Code"] == 0
    assert call(zsim, "QueryDigitalHumanStreamTasks", path="/")["Code"] == 0


@pytest.mark.parametrize(
    ("action", "raw", "code"),
    [
        ("QueryDigitalHumanStreamTasks", b"", 0),
        ("QueryDigitalHumanStreamTasks", b"{}", 0),
        ("QueryDigitalHumanStreamTasks", b"[]", 100000012),
        ("GetDigitalHumanStreamTaskStatus", b"", 100000012),
        ("GetDigitalHumanStreamTaskStatus", b"{not json", 100000012),
        ("GetDigitalHumanStreamTaskStatus", b'"{\\"TaskId\\": \\"x\\"}"', 100000012),  # a JSON-encoded string
        ("GetDigitalHumanStreamTaskStatus", b"\xff\xfe", 100000012),
        ("GetDigitalHumanStreamTaskStatus", b"{}", 400000001),
    ],
)
def test_body_must_be_a_json_object(zsim: Simulator, action: str, raw: bytes, code: int) -> None:
    assert call(zsim, action, raw=raw)["Code"] == code


def test_qps_limit_is_per_action_and_throttled_requests_do_not_count(zsim: Simulator, clock: FakeClock) -> None:
    task_id = zego(zsim).add_stream()
    for _ in range(10):
        assert status(zsim, task_id) == 1
    throttled = call(zsim, "GetDigitalHumanStreamTaskStatus", {"TaskId": task_id}, expect_http=429)
    assert throttled["Message"] == "QPS limit exceeded" and "Code" not in throttled
    assert call(zsim, "QueryDigitalHumanStreamTasks")["Code"] == 0  # another action has its own window
    clock.advance(0.5)
    call(zsim, "GetDigitalHumanStreamTaskStatus", {"TaskId": task_id}, expect_http=429)
    clock.advance(0.5)  # the first ten leave the window; the two throttled ones never entered it
    for _ in range(10):
        assert status(zsim, task_id) == 3
    assert zego(zsim).throttled == 2
    zego(zsim).qps_limit = None
    for _ in range(3):
        assert status(zsim, task_id) == 3


def test_auth_failures_do_not_use_the_quota(zsim: Simulator) -> None:
    for _ in range(15):
        assert call(zsim, "QueryDigitalHumanStreamTasks", Signature="0" * 32)["Code"] == 100000005
    assert call(zsim, "QueryDigitalHumanStreamTasks")["Code"] == 0


# -- create --------------------------------------------------------------------------------------


def _create_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DigitalHumanConfig": {"DigitalHumanId": "dh1", "BackgroundColor": "#ffffff"},
        "RTCConfig": {"RoomId": "room1", "StreamId": "stream1"},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        target = body[section] if name else body
        if value is None:
            target.pop(name or section)
        else:
            target[name or section] = value
    return body


@pytest.mark.parametrize(
    ("changes", "code", "named"),
    [
        ({"DigitalHumanConfig": None}, 400000001, "DigitalHumanConfig"),
        ({"DigitalHumanConfig__DigitalHumanId": None}, 400000001, "DigitalHumanId"),
        ({"DigitalHumanConfig__DigitalHumanId": ""}, 400000001, "DigitalHumanId"),
        ({"RTCConfig": None}, 400000001, "RTCConfig"),
        ({"RTCConfig__RoomId": None}, 400000001, "RoomId"),
        ({"RTCConfig__StreamId": None}, 400000001, "StreamId"),
        ({"RTCConfig__RoomId": "r" * 129}, 400000001, "RoomId"),
        ({"RTCConfig__RoomId": "é" * 65}, 400000001, "RoomId"),  # 130 bytes
        ({"RTCConfig__StreamId": "s" * 129}, 400000001, "StreamId"),
        ({"RTCConfig__StreamId": "a.b"}, 400000001, "StreamId"),
        ({"RTCConfig__StreamId": "a b"}, 400000001, "StreamId"),
        ({"TTL": 9}, 400000001, "TTL"),
        ({"TTL": 86401}, 400000001, "TTL"),
        ({"TTL": "60"}, 400000001, "TTL"),
        ({"MaxIdleTime": 29}, 400000001, "MaxIdleTime"),
        ({"MaxIdleTime": 86401}, 400000001, "MaxIdleTime"),
        ({"DigitalHumanConfig__DigitalHumanId": "missing-1"}, 400000003, "not found"),
    ],
)
def test_create_validation(zsim: Simulator, changes: dict[str, Any], code: int, named: str) -> None:
    answer = call(zsim, "CreateDigitalHumanStreamTask", _create_body(**changes))
    assert answer["Code"] == code and named in answer["Message"]
    assert zego(zsim).created_bodies == [] and zego(zsim).summary() == {"tasks": 0, "live": 0}


def test_create_accepts_the_edges_and_records_the_body(zsim: Simulator) -> None:
    body = _create_body(TTL=10, MaxIdleTime=30, RTCConfig__StreamId="Ab-_9" + "x" * 123, RTCConfig__RoomId="é" * 64)
    answer = call(zsim, "CreateDigitalHumanStreamTask", body)
    assert answer["Code"] == 0 and answer["Message"] == "success"
    task = zego(zsim).task(answer["Data"]["TaskId"])
    assert (task.ttl, task.max_idle, task.status) == (10, 30, 1)
    assert zego(zsim).created_bodies == [body]
    default = zego(zsim).task(create(zsim, stream="other"))
    assert (default.ttl, default.max_idle) == (86400, 900)


def test_stream_id_is_unique_until_its_task_is_gone(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    answer = call(zsim, "CreateDigitalHumanStreamTask", _create_body())
    assert answer["Code"] == 400000015
    call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})
    clock.advance(2.5)  # stopping, then stopped: still holds the StreamId
    assert call(zsim, "CreateDigitalHumanStreamTask", _create_body())["Code"] == 400000015
    clock.advance(0.5)
    assert create(zsim) != task_id


# -- lifecycle -------------------------------------------------------------------------------------


def test_stop_walks_through_4_and_5_then_the_task_is_gone(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    answer = call(zsim, "GetDigitalHumanStreamTaskStatus", {"TaskId": task_id})
    assert answer["Data"] == {"Status": 1, "RoomId": "room1", "StreamId": "stream1", "CreateTime": int(T0)}
    clock.advance(1.0)
    assert status(zsim, task_id) == 3
    stop = call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})
    assert stop["Code"] == 0 and "Data" not in stop
    assert status(zsim, task_id) == 4
    assert call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})["Code"] == 400000007
    clock.advance(1.0)
    assert status(zsim, task_id) == 5
    assert call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})["Code"] == 400000007
    clock.advance(2.0)
    assert status(zsim, task_id) == 400000005
    assert call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})["Code"] == 400000005
    assert zego(zsim).stop_calls == 4 and zego(zsim).task(task_id).end_reason == "stop"


def test_stop_while_initializing(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    clock.advance(0.5)
    assert call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})["Code"] == 0
    assert status(zsim, task_id) == 4


@pytest.mark.parametrize("how", ["next_outcome", "broken_id"])
def test_init_failure_shows_2_with_a_reason_then_is_gone(zsim: Simulator, clock: FakeClock, how: str) -> None:
    if how == "next_outcome":
        zego(zsim).next_outcome = "init_failed"
    task_id = create(zsim, human="broken-1" if how == "broken_id" else "dh1")
    assert status(zsim, task_id) == 1
    clock.advance(1.0)
    answer = call(zsim, "GetDigitalHumanStreamTaskStatus", {"TaskId": task_id})
    assert answer["Data"]["Status"] == 2 and answer["Data"]["FailReason"]
    assert drive(zsim, task_id)["Code"] == 400000007
    assert call(zsim, "QueryDigitalHumanStreamTasks")["Data"]["TaskList"] == []
    assert zego(zsim).summary() == {"tasks": 1, "live": 0}
    clock.advance(2.0)
    assert status(zsim, task_id) == 400000005
    assert zego(zsim).task(task_id).end_reason is None


def test_ttl_ends_the_stream(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim, TTL=10, MaxIdleTime=30)
    clock.advance(9.75)
    assert status(zsim, task_id) == 3
    assert drive(zsim, task_id, "x" * 200)["Code"] == 0  # 10 s of speech does not outlive the TTL
    clock.advance(0.25)
    assert status(zsim, task_id) == 4
    assert zego(zsim).task(task_id).end_reason == "ttl"


def test_max_idle_time_counts_from_the_last_drive(zsim: Simulator, clock: FakeClock) -> None:
    idle = create(zsim, stream="idle", MaxIdleTime=30)
    driven = create(zsim, stream="driven", MaxIdleTime=30)
    clock.advance(1.0 + 20)
    assert drive(zsim, driven, "x" * 40)["Code"] == 0  # speaks for 2 s: idle from 23 s after start
    clock.advance(9.75)
    assert (status(zsim, idle), status(zsim, driven)) == (3, 3)
    clock.advance(0.25)
    assert (status(zsim, idle), status(zsim, driven)) == (4, 3)
    clock.advance(21.75)
    assert status(zsim, driven) == 3
    clock.advance(0.25)
    assert status(zsim, driven) == 4
    assert (zego(zsim).task(idle).end_reason, zego(zsim).task(driven).end_reason) == ("idle", "idle")


def test_query_lists_only_initializing_and_streaming_tasks(zsim: Simulator, clock: FakeClock) -> None:
    streaming = create(zsim, stream="s3")
    stopping = create(zsim, stream="s4")
    zego(zsim).next_outcome = "init_failed"
    failed = create(zsim, stream="s2")
    zego(zsim).next_outcome = "ok"
    gone = zego(zsim).add_stream(stream_id="gone", created_at=T0 - 100, ttl=10)
    clock.advance(1.0)
    initializing = create(zsim, stream="s1")
    call(zsim, "StopDigitalHumanStreamTask", {"TaskId": stopping})
    statuses = {t: status(zsim, t) for t in (streaming, stopping, failed, gone, initializing)}
    assert statuses == {streaming: 3, stopping: 4, failed: 2, gone: 400000005, initializing: 1}
    rows = call(zsim, "QueryDigitalHumanStreamTasks")["Data"]["TaskList"]
    assert sorted((r["TaskId"], r["StreamId"], r["Status"]) for r in rows) == sorted(
        [(streaming, "s3", 3), (initializing, "s1", 1)]
    )
    assert all(r["RoomId"] == "room1" and isinstance(r["CreateTime"], int) for r in rows)
    assert zego(zsim).summary() == {"tasks": 4, "live": 3}


# -- driving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"TaskId": None}, 400000001, "TaskId"),
        ({"Text": None}, 400000001, "Text"),
        ({"Text": ""}, 400000001, "Text"),
        ({"Text": "   "}, 400000001, "Text"),
        ({"Text": "x" * 1801}, 400000001, "Text"),
        ({"TTSConfig": None}, 400000001, "TTSConfig"),
        ({"TTSConfig": {}}, 400000001, "TimbreId"),
        ({"TTSConfig": {"TimbreId": "t1", "SpeechRate": 501}}, 400000001, "SpeechRate"),
        ({"TTSConfig": {"TimbreId": "t1", "SpeechRate": -501}}, 400000001, "SpeechRate"),
        ({"TTSConfig": {"TimbreId": "t1", "PitchRate": 600}}, 400000001, "PitchRate"),
        ({"TTSConfig": {"TimbreId": "t1", "Volume": 0}}, 400000001, "Volume"),
        ({"TTSConfig": {"TimbreId": "t1", "Volume": 101}}, 400000001, "Volume"),
        ({"TTSConfig": {"TimbreId": "t1", "Volume": True}}, 400000001, "Volume"),
        ({"InterruptMode": 2}, 400000001, "InterruptMode"),
        ({"InterruptMode": True}, 400000001, "InterruptMode"),
        ({"TTSConfig": {"TimbreId": "missing-voice"}}, 400000004, "timbre"),
        ({"TaskId": "no-such-task"}, 400000005, "not found"),
    ],
)
def test_drive_validation(zsim: Simulator, clock: FakeClock, body: dict[str, Any], code: int, named: str) -> None:
    task_id = create(zsim)
    clock.advance(1.0)
    full = {"TaskId": task_id, "Text": "hello", "TTSConfig": {"TimbreId": "t1"}, **body}
    answer = call(zsim, "DriveByText", {k: v for k, v in full.items() if v is not None})
    assert answer["Code"] == code and named in answer["Message"]
    assert zego(zsim).task(task_id).drives == []


def test_drive_accepts_the_edges(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    clock.advance(1.0)
    tts = {"TimbreId": "t1", "SpeechRate": -500, "PitchRate": 500, "Volume": 1}
    answer = drive(zsim, task_id, "x" * 1800, TTSConfig=tts, InterruptMode=1)
    assert answer["Code"] == 0
    uuid.UUID(answer["Data"]["DriveId"])


def test_drive_needs_a_streaming_task(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    assert drive(zsim, task_id)["Code"] == 400000006
    clock.advance(1.0)
    assert drive(zsim, task_id)["Code"] == 0
    call(zsim, "StopDigitalHumanStreamTask", {"TaskId": task_id})
    assert drive(zsim, task_id)["Code"] == 400000007
    clock.advance(1.0)
    assert drive(zsim, task_id)["Code"] == 400000007
    clock.advance(2.0)
    assert drive(zsim, task_id)["Code"] == 400000005


def test_drives_queue_interrupt_and_are_recorded(zsim: Simulator, clock: FakeClock) -> None:
    task_id = create(zsim)
    clock.advance(1.0)
    now = clock.now
    first, second = (drive(zsim, task_id, text)["Data"]["DriveId"] for text in ("a" * 40, "b"))
    task = zego(zsim).task(task_id)
    assert task.texts == ["a" * 40, "b"]
    assert [(d.drive_id, d.start - now, d.end - now) for d in task.drives] == [
        (first, 0, 2.0),
        (second, 2.0, pytest.approx(2.2)),  # at least 0.2 s per drive
    ]
    clock.advance(1.0)
    assert [d.status_at(clock.now) for d in task.drives] == [2, 1]
    drive(zsim, task_id, "c" * 20, InterruptMode=1)  # cuts both, speaks now
    assert [(d.interrupted, d.status_at(clock.now)) for d in task.drives] == [(True, 4), (True, 4), (False, 2)]
    assert task.busy_until == clock.now + 1.0
    drive(zsim, task_id, "d")  # queued behind "c"
    clock.advance(0.5)
    assert call(zsim, "InterruptDriveTask", {"TaskId": task_id})["Code"] == 0
    assert [d.interrupted for d in task.drives] == [True, True, True, True]
    assert task.busy_until == clock.now and all(d.status_at(clock.now) == 4 for d in task.drives)
    assert call(zsim, "InterruptDriveTask", {"TaskId": "nope"})["Code"] == 400000005


def test_scripted_streams(zsim: Simulator, clock: FakeClock) -> None:
    sim = zego(zsim)
    task_id = sim.add_stream(room_id="r9", stream_id="s9", ttl=20, max_idle=900, created_at=T0 - 19)
    assert (sim.task(task_id).status, status(zsim, task_id)) == (3, 3)
    clock.advance(1.0)
    assert (sim.task(task_id).status, sim.task(task_id).end_reason) == (4, "ttl")
    with pytest.raises(ValueError, match="s9"):
        sim.add_stream(stream_id="s9")
    with pytest.raises(ValueError, match="outcome"):
        sim.add_stream(outcome="exploded")
    sim.start_delay = 5.0
    slow = sim.add_stream()
    clock.advance(4.5)
    assert status(zsim, slow) == 1
    sim.reset()
    assert (sim.tasks, sim.start_delay, sim.stop_calls, sim.throttled) == ({}, 1.0, 0, 0)


# -- the shared simulator (real clock) and info() --------------------------------------------------


def test_real_clock_round_trip_and_info(sim: Simulator) -> None:
    before = time.time()
    task_id = create(sim)
    after = time.time()
    assert status(sim, task_id) == 1
    info = sim.info()
    assert info["logins"]["zego"] == DEFAULT_APP_ID
    assert info["summary"]["zego"] == {"tasks": 1, "live": 1} and info["summary"]["scenext"] == {}
    assert info["services"]["zego"] == sim.url("zego")
    over_http = requests.get(f"{sim.base_url}/_sim/info", timeout=5).json()
    assert over_http["logins"] == info["logins"] and over_http["summary"]["zego"] == {"tasks": 1, "live": 1}
    assert before <= zego(sim).task(task_id).created_at <= after
    assert [r.service for r in sim.requests("zego")] == ["zego", "zego"]
