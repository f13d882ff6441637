"""Simulated ZEGOCLOUD Digital Human streaming API (docs/services/zego.md) under ``/zego``.

Every call is ``POST /zego?Action=<name>&AppId=..&SignatureNonce=..&Timestamp=..&SignatureVersion=2.0
&Signature=..`` with a JSON body, answered with HTTP 200 and ``{"Code", "Message", "RequestId", "Data"}``
(``Code`` 0 = success), except the per-action QPS limit, which answers HTTP 429.

A stream's lifecycle is computed lazily from ``state.clock()`` on every read (no background work):
1 (initializing, ``start_delay`` s) → 3 (streaming) → 4 (stopping, ``stop_delay`` s) → 5 (stopped,
``linger`` s) → gone (code 400000005), or 1 → 2 (init failed, ``linger`` s) → gone. Streaming ends at
the earliest of a stop request, ``created_at + TTL`` and ``MaxIdleTime`` after the last activity.
The timing knobs are read when a stream is created, so changing them never rewrites a timeline.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_avatar.testing.simulator import ServiceSim

DEFAULT_APP_ID = "1234567890"
#: Outcomes a stream can be scripted to have.
OUTCOMES = ("ok", "init_failed")
#: Statuses ``QueryDigitalHumanStreamTasks`` lists (running tasks only).
RUNNING = (1, 3)
#: Statuses still billed (the stream exists on ZEGO's side).
LIVE = (1, 3, 4)

# Codes the simulator answers with (docs/services/zego.md, "Return codes").
OK = 0
BAD_APP_ID = 100000001
EMPTY_TIMESTAMP = 100000002
BAD_TIMESTAMP = 100000003
SIGNATURE_EXPIRED = 100000004
SIGNATURE_ERROR = 100000005
EMPTY_ACTION = 100000006
UNKNOWN_ACTION = 100000007
EMPTY_NONCE = 100000008
EMPTY_SIGNATURE = 100000009
UNKNOWN_APP_ID = 100000010
BAD_BODY = 100000012
EMPTY_SIGNATURE_VERSION = 100000013
BAD_SIGNATURE_VERSION = 100000014
INVALID_PARAM = 400000001
DIGITAL_HUMAN_NOT_FOUND = 400000003
TIMBRE_NOT_FOUND = 400000004
TASK_NOT_FOUND = 400000005
STREAM_NOT_STARTED = 400000006
STREAM_STOPPED = 400000007
STREAM_ID_EXISTS = 400000015

TIMESTAMP_WINDOW = 600  # seconds of clock skew the gateway tolerates
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]+")
_INT = re.compile(r"-?[0-9]+")


def signature(app_id: str, nonce: str, secret: str, timestamp: str) -> str:
    """ZEGO's request signature: ``md5(AppId + SignatureNonce + ServerSecret + Timestamp)``, lowercase hex."""
    return hashlib.md5(f"{app_id}{nonce}{secret}{timestamp}".encode()).hexdigest()


class _Reject(Exception):
    """A business error: answered with HTTP 200 and a non-zero Code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> _Reject:
    return _Reject(INVALID_PARAM, f"invalid parameter: {message}")


@dataclass
class ZegoDrive:
    drive_id: str
    text: str
    interrupt_mode: int
    timbre_id: str
    start: float
    end: float
    #: Cut short by InterruptMode 1 or InterruptDriveTask (``end`` is then when it was cut).
    interrupted: bool = False

    def status_at(self, now: float) -> int:
        """ZEGO's drive status (callback EventType 4): 1 queued, 2 speaking, 4 finished."""
        if now < self.start:
            return 1
        return 2 if now < self.end else 4


@dataclass
class ZegoTask:
    task_id: str
    room_id: str
    stream_id: str
    digital_human_id: str
    created_at: float
    ttl: float
    max_idle: float
    outcome: str
    start_delay: float
    stop_delay: float
    linger: float
    fail_reason: str | None = None
    #: When StopDigitalHumanStreamTask was accepted.
    stop_at: float | None = None
    #: When the last queued drive finishes speaking (0 = never driven).
    busy_until: float = 0.0
    drives: list[ZegoDrive] = field(default_factory=list)
    #: Refreshed by ``ZegoSim.task()``: the status now (None = gone) and why streaming ended.
    status: int | None = 1
    end_reason: str | None = None

    @property
    def started_at(self) -> float:
        return self.created_at + self.start_delay

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.drives]

    def end(self) -> tuple[float, str]:
        """When streaming ends (or ended) and why: ``"stop"``, ``"ttl"`` or ``"idle"`` (ties in that order)."""
        candidates = [
            (self.created_at + self.ttl, "ttl"),
            (max(self.started_at, self.busy_until) + self.max_idle, "idle"),
        ]
        if self.stop_at is not None:
            candidates.insert(0, (self.stop_at, "stop"))
        return min(candidates, key=lambda c: c[0])

    def status_at(self, now: float) -> int | None:
        """The wire Status at ``now``; None once the task is gone (not found)."""
        if self.outcome == "init_failed":
            if now < self.started_at:
                return 1
            return 2 if now < self.started_at + self.linger else None
        ended, _ = self.end()
        if now >= ended:
            if now < ended + self.stop_delay:
                return 4
            return 5 if now < ended + self.stop_delay + self.linger else None
        return 1 if now < self.started_at else 3

    def end_reason_at(self, now: float) -> str | None:
        if self.outcome == "init_failed":
            return None
        ended, reason = self.end()
        return reason if now >= ended else None

    def cut_drives(self, now: float) -> None:
        """End the current drive now and drop the queued ones."""
        for drive in reversed(self.drives):
            if drive.end <= now:
                break
            drive.interrupted = True
            drive.start = min(drive.start, now)
            drive.end = now
        self.busy_until = min(self.busy_until, now)


class ZegoSim(ServiceSim):
    """ZEGO's digital-human stream API: signed query-string auth, Code envelopes, lazy stream lifecycle.

    Knobs (restored by ``reset()``): ``next_outcome``, ``start_delay``, ``stop_delay``, ``linger``,
    ``chars_per_second``, ``qps_limit``. Credentials: ``app_id`` (not reset) and the ServerSecret
    ``state.key_for("zego")``.
    """

    name = "zego"
    stop_method = "stop_stream"
    request_ids = True
    idempotent_create = "a StreamId is unique per AppId: a second create is refused (400000015) while the first lives"
    not_applicable = {
        "no_artifact": "a live stream has no file: there is no 'finished without a result'",
        "check-10": "a live stream has no video to download",
        "check-11": "a live stream hands out no download URL",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app_id = DEFAULT_APP_ID
        self.tasks: dict[str, ZegoTask] = {}  # every task ever created, gone ones included, for assertions
        self._alive: dict[str, ZegoTask] = {}  # tasks not yet seen gone (pruned lazily)
        self._streams: dict[str, str] = {}  # StreamId -> TaskId of its latest task
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._ids = itertools.count(1)
        self.created_bodies: list[dict[str, Any]] = []
        self.stop_calls = 0
        self.throttled = 0
        #: Actions answered (past the gateway's checks and rate limit), by name, for assertions and benchmarks.
        self.answered: Counter[str] = Counter()
        #: Task id -> time before which its status answers a Status the client does not know (9).
        self.unknown_until: dict[str, float] = {}
        #: The next N creates are refused as invalid (400000001).
        self.refuse_creates = 0
        self._handlers: dict[str, Callable[[dict[str, Any], float], dict[str, Any] | None]] = {
            "CreateDigitalHumanStreamTask": self._create,
            "GetDigitalHumanStreamTaskStatus": self._get_status,
            "QueryDigitalHumanStreamTasks": self._query,
            "DriveByText": self._drive,
            "InterruptDriveTask": self._interrupt,
            "StopDigitalHumanStreamTask": self._stop,
        }
        self._defaults()

    def _defaults(self) -> None:
        self.next_outcome = "ok"
        self.start_delay = 1.0
        self.stop_delay = 1.0
        self.linger = 2.0
        self.chars_per_second = 20.0
        self.qps_limit: int | None = 10

    def reset(self) -> None:
        self.tasks.clear()
        self._alive.clear()
        self._streams.clear()
        self._windows.clear()
        self.created_bodies.clear()
        self.stop_calls = 0
        self.throttled = 0
        self.answered.clear()
        self.unknown_until.clear()
        self.refuse_creates = 0
        self._defaults()

    @property
    def login(self) -> str | None:
        return self.app_id

    def summary(self) -> dict[str, Any]:
        now = self.state.clock()
        statuses = [self._status(task, now) for task in list(self._alive.values())]
        return {"tasks": sum(s is not None for s in statuses), "live": sum(s in LIVE for s in statuses)}

    # -- Python scripting ----------------------------------------------------------------------
    def add_stream(
        self,
        *,
        room_id: str = "room1",
        stream_id: str | None = None,
        outcome: str = "ok",
        ttl: float = 86400,
        max_idle: float = 900,
        created_at: float | None = None,
        digital_human_id: str = "dh1",
    ) -> str:
        """Script a stream task directly (tests, benchmarks); returns its TaskId. Ranges are not checked."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        stream_id = stream_id or f"sim_stream_{next(self._ids)}"
        if self._stream_taken(stream_id, self.state.clock()):
            raise ValueError(f"StreamId {stream_id!r} belongs to a task that is not gone")
        now = self.state.clock() if created_at is None else created_at
        task = ZegoTask(
            task_id=str(uuid.uuid4()),
            room_id=room_id,
            stream_id=stream_id,
            digital_human_id=digital_human_id,
            created_at=now,
            ttl=ttl,
            max_idle=max_idle,
            outcome=outcome,
            start_delay=self.start_delay,
            stop_delay=self.stop_delay,
            linger=self.linger,
            fail_reason=f"digital human {digital_human_id} failed to initialize" if outcome == "init_failed" else None,
        )
        self.tasks[task.task_id] = self._alive[task.task_id] = task
        self._streams[stream_id] = task.task_id
        return task.task_id

    # -- reliability-suite interface (ServiceSim.script) ---------------------------------------
    def _script(self, history: str, duration: float) -> str:
        saved = self.start_delay, self.linger
        try:
            if history == "long_running":
                self.start_delay = 10.0**7  # STARTING for ever
                return self.add_stream()
            self.start_delay = duration
            if history == "gone_after_seen":
                self.linger = 0.0  # seen STARTING, then dropped at once (never seen as 2)
            outcome = "init_failed" if history in ("fails", "gone_after_seen") else "ok"
            task_id = self.add_stream(outcome=outcome)
            if history == "unknown_then_succeeds":
                self.unknown_until[task_id] = self.state.clock() + duration / 2
            return task_id
        finally:
            self.start_delay, self.linger = saved

    def create_call(self) -> tuple[str, dict[str, Any]]:
        return "create_stream", {"digital_human_id": "dh1", "room_id": "room1", "stream_id": f"s{next(self._ids)}"}

    def bounded_lifetime(self, task_id: str) -> float | None:
        return self.tasks[task_id].ttl

    def refuse_next_create(self) -> None:
        self.refuse_creates += 1

    def task(self, task_id: str) -> ZegoTask:
        """A task (gone ones included) with ``status`` and ``end_reason`` refreshed to now."""
        task = self.tasks[task_id]
        self._status(task, self.state.clock())
        return task

    def _status(self, task: ZegoTask, now: float) -> int | None:
        task.status = task.status_at(now)
        task.end_reason = task.end_reason_at(now)
        if task.status is None:
            self._alive.pop(task.task_id, None)
        return task.status

    def _stream_taken(self, stream_id: str, now: float) -> bool:
        owner = self._streams.get(stream_id)
        return owner is not None and self._status(self.tasks[owner], now) is not None

    # -- wire ----------------------------------------------------------------------------------
    def is_status_read(self, request: web.BaseRequest) -> bool:
        return request.query.get("Action") in ("GetDigitalHumanStreamTaskStatus", "QueryDigitalHumanStreamTasks")

    def is_create(self, request: web.BaseRequest) -> bool:
        return request.method == "POST" and request.query.get("Action") == "CreateDigitalHumanStreamTask"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/zego", self.dispatch), web.post("/zego/", self.dispatch)]

    @staticmethod
    def _answer(code: int, message: str, data: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}
        if data is not None:
            body["Data"] = data
        return web.json_response(body)

    def _check_common(self, query: Mapping[str, str], now: float) -> str:
        """The gateway's checks on the query-string parameters, in ZEGO's order; returns the Action."""
        app_id = query.get("AppId", "")
        if not _DIGITS.fullmatch(app_id):
            raise _Reject(BAD_APP_ID, "AppId is invalid")
        if app_id != self.app_id:
            raise _Reject(UNKNOWN_APP_ID, "failed to get ServerSecret: unknown AppId")
        timestamp = query.get("Timestamp", "")
        if not timestamp:
            raise _Reject(EMPTY_TIMESTAMP, "Timestamp is empty")
        if not _INT.fullmatch(timestamp):
            raise _Reject(BAD_TIMESTAMP, "Timestamp is invalid")
        nonce = query.get("SignatureNonce", "")
        if not nonce:
            raise _Reject(EMPTY_NONCE, "SignatureNonce is empty")
        sent = query.get("Signature", "")
        if not sent:
            raise _Reject(EMPTY_SIGNATURE, "Signature is empty")
        version = query.get("SignatureVersion", "")
        if not version:
            raise _Reject(EMPTY_SIGNATURE_VERSION, "SignatureVersion is empty")
        if version != "2.0":
            raise _Reject(BAD_SIGNATURE_VERSION, "SignatureVersion is unsupported (only 2.0)")
        action = query.get("Action", "")
        if not action:
            raise _Reject(EMPTY_ACTION, "Action is empty")
        if action not in self._handlers:
            raise _Reject(UNKNOWN_ACTION, f"Action {action} is not supported")
        if abs(int(timestamp) - now) > TIMESTAMP_WINDOW:
            raise _Reject(SIGNATURE_EXPIRED, "signature expired")
        expected = signature(app_id, nonce, self.state.key_for(self.name), timestamp)
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise _Reject(SIGNATURE_ERROR, "signature error")
        return action

    def _admit(self, action: str, now: float) -> bool:
        """Sliding 1 s window per (AppId, Action); a throttled request does not count."""
        if self.qps_limit is None:
            return True
        window = self._windows.setdefault((self.app_id, action), deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.qps_limit:
            self.throttled += 1
            return False
        window.append(now)
        return True

    async def dispatch(self, request: web.Request) -> web.Response:
        now = self.state.clock()
        try:
            action = self._check_common(request.query, now)
        except _Reject as exc:
            return self._answer(exc.code, exc.message)
        if not self._admit(action, now):
            # ZEGO documents a 10 QPS limit per API but no return code for exceeding it; the simulator
            # answers HTTP 429 without a Code or Retry-After, so clients must handle a bare 429.
            return web.json_response({"Message": "QPS limit exceeded", "RequestId": str(uuid.uuid4())}, status=429)
        raw = await request.read()
        body: Any
        if not raw.strip() and action == "QueryDigitalHumanStreamTasks":
            body = {}
        else:
            try:
                body = json.loads(raw)
            except ValueError:  # includes UnicodeDecodeError
                body = None
            if not isinstance(body, dict):
                return self._answer(BAD_BODY, "failed to read the request body: a JSON object is required")
        self.answered[action] += 1
        try:
            data = self._handlers[action](body, now)
        except _Reject as exc:
            return self._answer(exc.code, exc.message)
        return self._answer(OK, "success", data)

    # -- actions -------------------------------------------------------------------------------
    def _lookup(self, body: dict[str, Any], now: float) -> tuple[ZegoTask, int]:
        task_id = body.get("TaskId")
        if not isinstance(task_id, str) or not task_id:
            raise _invalid("TaskId is required")
        task = self.tasks.get(task_id) if self.listed(task_id) else None
        status = None if task is None else self._status(task, now)
        if task is None or status is None:
            raise _Reject(TASK_NOT_FOUND, "task not found")
        return task, status

    def _create(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        human = body.get("DigitalHumanConfig")
        rtc = body.get("RTCConfig")
        if self.refuse_creates:
            self.refuse_creates -= 1
            raise _invalid("DigitalHumanConfig.BackgroundColor is not a color")
        if not isinstance(human, dict):
            raise _invalid("DigitalHumanConfig is required")
        if not isinstance(rtc, dict):
            raise _invalid("RTCConfig is required")
        human_id = human.get("DigitalHumanId")
        if not isinstance(human_id, str) or not human_id:
            raise _invalid("DigitalHumanConfig.DigitalHumanId is required")
        for key in ("RoomId", "StreamId"):
            value = rtc.get(key)
            if not isinstance(value, str) or not value:
                raise _invalid(f"RTCConfig.{key} is required")
            if len(value.encode()) > 128:
                raise _invalid(f"RTCConfig.{key} is longer than 128 bytes")
        if not _STREAM_ID.fullmatch(rtc["StreamId"]):
            raise _invalid("RTCConfig.StreamId may only hold letters, digits, '-' and '_'")
        ttl = _int_in(body, "TTL", 10, 86400, default=86400)
        max_idle = _int_in(body, "MaxIdleTime", 30, 86400, default=900)
        if human_id.startswith("missing"):
            raise _Reject(DIGITAL_HUMAN_NOT_FOUND, "digital human not found")
        if self._stream_taken(rtc["StreamId"], now):
            raise _Reject(STREAM_ID_EXISTS, "stream ID already exists")
        outcome = "init_failed" if human_id.startswith("broken") else self.next_outcome
        task_id = self.add_stream(
            room_id=rtc["RoomId"],
            stream_id=rtc["StreamId"],
            outcome=outcome,
            ttl=ttl,
            max_idle=max_idle,
            created_at=now,
            digital_human_id=human_id,
        )
        self.created_bodies.append(body)
        return {"TaskId": task_id}

    def _get_status(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        task, status = self._lookup(body, now)
        if now < self.unknown_until.get(task.task_id, -1.0):
            status = 9  # not a documented Status
        data: dict[str, Any] = {
            "Status": status,
            "RoomId": task.room_id,
            "StreamId": task.stream_id,
            "CreateTime": int(task.created_at),
        }
        if status == 2:
            data["FailReason"] = task.fail_reason
        return data

    def _query(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        rows = []
        for task in list(self._alive.values()):
            status = self._status(task, now)
            if status in RUNNING:
                rows.append(
                    {
                        "TaskId": task.task_id,
                        "RoomId": task.room_id,
                        "StreamId": task.stream_id,
                        "Status": status,
                        "CreateTime": int(task.created_at),
                    }
                )
        return {"TaskList": rows}

    def _drive(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        task_id = body.get("TaskId")
        if not isinstance(task_id, str) or not task_id:
            raise _invalid("TaskId is required")
        text = body.get("Text")
        if not isinstance(text, str) or not text.strip():
            raise _invalid("Text is required")
        if len(text) > 1800:
            raise _invalid("Text is longer than 1800 characters")
        mode = _int_in(body, "InterruptMode", 0, 1, default=0)
        tts = body.get("TTSConfig")
        if not isinstance(tts, dict):
            raise _invalid("TTSConfig is required")
        timbre = tts.get("TimbreId")
        if not isinstance(timbre, str) or not timbre:
            raise _invalid("TTSConfig.TimbreId is required")
        for key, low, high in (("SpeechRate", -500, 500), ("PitchRate", -500, 500), ("Volume", 1, 100)):
            _number_in(tts, key, low, high, prefix="TTSConfig.")
        task, status = self._lookup(body, now)
        if status == 1:
            raise _Reject(STREAM_NOT_STARTED, "stream not started yet")
        if status != 3:
            raise _Reject(STREAM_STOPPED, "stream already stopped")
        if timbre.startswith("missing"):
            raise _Reject(TIMBRE_NOT_FOUND, "timbre not found")
        if mode == 1:
            task.cut_drives(now)
        start = max(now, task.busy_until)
        drive = ZegoDrive(
            drive_id=str(uuid.uuid4()),
            text=text,
            interrupt_mode=mode,
            timbre_id=timbre,
            start=start,
            end=start + max(0.2, len(text) / self.chars_per_second),
        )
        task.drives.append(drive)
        task.busy_until = drive.end
        return {"DriveId": drive.drive_id}

    def _interrupt(self, body: dict[str, Any], now: float) -> None:
        task, _ = self._lookup(body, now)
        task.cut_drives(now)

    def _stop(self, body: dict[str, Any], now: float) -> None:
        self.stop_calls += 1
        task, status = self._lookup(body, now)
        if status in (4, 5):
            raise _Reject(STREAM_STOPPED, "stream already stopped")
        if status in (1, 3):  # an init-failed task (2) has no stream to stop: accepted, nothing changes
            task.stop_at = now


def _int_in(body: dict[str, Any], key: str, low: int, high: int, *, default: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(f"{key} must be an integer in [{low}, {high}]")
    return value


def _number_in(body: dict[str, Any], key: str, low: int, high: int, *, prefix: str = "") -> None:
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(f"{prefix}{key} must be a number in [{low}, {high}]")
