"""Simulated Tencent Cloud TRTC stream-ingest API (docs/services/trtc.md), served at ``POST /``.

The real SDK talks to it: ``TrtcClient(Credential(SecretId, SecretKey), region, ClientProfile(httpProfile=
HttpProfile(protocol="http", endpoint="127.0.0.1:PORT")))``. Every call is ``POST /`` with the action in
the ``X-TC-Action`` header, a JSON body and a TC3-HMAC-SHA256 ``Authorization`` (checked here from the
published algorithm, not with the SDK's signer). Every answer is HTTP 200 with the bare content type
``application/json`` (the SDK reads ``Response.Error`` only then): ``{"Response": {..., "RequestId"}}``
or ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``.

A task's lifecycle is computed lazily from the simulator clock on every read (no background work):
``NotExist`` for ``start_delay`` s, then ``InProgress`` until the media ends, then ``NotExist``. The media
plays ``media_seconds`` (a ``sim_seconds=N`` query parameter of the StreamUrl overrides it) ``RepeatNum``
times; ``RepeatNum`` -1 loops until ``MaxDuration`` minutes (or a stop, without one). ``sim_reads=N``
instead plays until N Describe reads have answered ``InProgress``, and the next read finds it ended: a
test running in real time sees it live however slow the machine is. A StreamUrl
containing ``stall`` stops sending after its media and the task ends ``IdleTimeout`` s later
(``adaptive_idle_timeout`` when unset). A StreamUrl containing ``broken`` is accepted (TaskId returned)
but never ingests: ``NotExist`` throughout, as TRTC answers for a failed pull. A stop ends a task at once.
The timing knobs are read when a task is created, so changing them never rewrites a timeline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from airflow_provider_avatar.testing.simulator import ServiceSim

#: 36 characters like a real SecretId (``AKID`` + 32).
DEFAULT_SECRET_ID = "AKIDsimulator00000000000000000000000"
DEFAULT_SDK_APP_ID = 1400000001
DEFAULT_REGION = "ap-singapore"
#: Regions the stream-ingest pages list; ``TrtcSim.regions = None`` accepts any.
REGIONS = frozenset({"ap-bangkok", "ap-guangzhou", "ap-jakarta", "ap-mumbai", "ap-singapore", "ap-tokyo"})
API_VERSION = "2019-07-22"
SERVICE = "trtc"
ALGORITHM = "TC3-HMAC-SHA256"
#: Seconds a request's X-TC-Timestamp may be off the server's clock (the common table: 5 minutes).
TIMESTAMP_WINDOW = 300
#: A paused task is destroyed after 12 h paused.
PAUSE_LIMIT = 12 * 3600.0
STREAM_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp", "srt")
IN_PROGRESS = "InProgress"
NOT_EXIST = "NotExist"
ACTIONS = ("StartStreamIngest", "DescribeStreamIngest", "StopStreamIngest", "UpdateStreamIngest")

_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<secret_id>[^/\s,]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z0-9]+)"
    r"/tc3_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_INT = re.compile(r"-?[0-9]+")
_USER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: A TaskId the API could have issued: anything else is ``InvalidParameter.TaskId``.
_TASK_ID = re.compile(r"[A-Za-z0-9_.=+/-]{1,256}")


class _Reject(Exception):
    """An API error: answered with HTTP 200 and ``Response.Error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _missing(name: str, code: str | None = None) -> _Reject:
    return _Reject(code or "MissingParameter", f"The request is missing a required parameter `{name}`.")


def _out_of_range(name: str, allowed: str, code: str = "InvalidParameter.OutOfRange") -> _Reject:
    return _Reject(code, f"The value of `{name}` is out of range: {allowed}.")


# -- TC3-HMAC-SHA256 (Tencent Cloud API 3.0 signature v3) ----------------------------------------
def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
) -> str:
    """The hex signature of a request: canonical request → string to sign → key derived per date and service.

    ``headers`` maps lowercase names to values; each signed header is ``name:value`` in lowercase, trimmed.
    """
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [method, path, query, canonical_headers, ";".join(signed_headers), hashlib.sha256(payload).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# -- UserSig (TLSSigAPIv2) -------------------------------------------------------------------------
def decode_user_sig(user_sig: str) -> dict[str, Any]:
    """A UserSig's JSON: base64 with ``*-_`` for ``+/=``, then zlib. Raises ``ValueError`` if garbled."""
    try:
        raw = base64.b64decode(user_sig.translate(str.maketrans("*-_", "+/=")), validate=True)
        data = json.loads(zlib.decompress(raw))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise ValueError(f"not a UserSig: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ValueError("not a UserSig: not a JSON object")
    return data


def user_sig_hmac(
    sdk_secret_key: str, identifier: str, sdk_app_id: int, issued: int, expire: int, userbuf: str | None
) -> str:
    """TLS.sig: base64 of HMAC-SHA256 over the identifier, SdkAppId, time, expiry (and userbuf) lines."""
    content = f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{issued}\nTLS.expire:{expire}\n"
    if userbuf is not None:
        content += f"TLS.userbuf:{userbuf}\n"
    return base64.b64encode(hmac.new(sdk_secret_key.encode(), content.encode(), hashlib.sha256).digest()).decode()


def check_user_sig(user_sig: str, *, user_id: str, sdk_app_id: int, sdk_secret_key: str, now: float) -> str | None:
    """Why ``user_sig`` does not let ``user_id`` into ``sdk_app_id`` at ``now``, or None if it does."""
    try:
        data = decode_user_sig(user_sig)
    except ValueError as exc:
        return str(exc)
    identifier, app_id = data.get("TLS.identifier"), data.get("TLS.sdkappid")
    issued, expire, sig = data.get("TLS.time"), data.get("TLS.expire"), data.get("TLS.sig")
    userbuf = data.get("TLS.userbuf")
    if not (isinstance(issued, int) and isinstance(expire, int) and isinstance(sig, str)):
        return "not a UserSig: TLS.time, TLS.expire or TLS.sig missing"
    if identifier != user_id:
        return "UserSig was made for another UserId"
    if app_id != sdk_app_id:
        return "UserSig was made for another SdkAppId"
    expected = user_sig_hmac(
        sdk_secret_key, user_id, sdk_app_id, issued, expire, userbuf if isinstance(userbuf, str) else None
    )
    if not hmac.compare_digest(sig.encode(), expected.encode()):
        return "UserSig signature does not match the application's SDK secret key"
    if now >= issued + expire:
        return "UserSig expired"
    return None


# -- tasks -----------------------------------------------------------------------------------------
@dataclass
class TrtcTask:
    task_id: str
    sdk_app_id: int
    room_id: str
    user_id: str
    stream_url: str
    created_at: float
    started_at: float
    #: Seconds of ingest from ``play_start`` until it ends on its own (``math.inf``: until stopped).
    play_seconds: float
    #: Why it ends on its own: ``"media"`` (RepeatNum plays), ``"max_duration"``, ``"idle"`` or ``"never"``.
    natural_reason: str
    #: When the current source started playing (the start, or the last StreamUrl update).
    play_start: float
    broken: bool = False
    paused_at: float | None = None
    paused_total: float = 0.0
    stop_at: float | None = None
    volume: int = 100
    tempo: float = 1.0
    #: Describe reads still answered ``InProgress`` before the media ends (``sim_reads``; None: timed).
    reads_left: int | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Refreshed by ``TrtcSim.task()``: Describe's answer now, and why the ingest ended (None: not ended;
    #: ``"broken"``: never ingested).
    status: str = NOT_EXIST
    end_reason: str | None = None

    def end(self) -> tuple[float, str]:
        """When the ingest ends (or ended) and why: ``"stop"``, ``"paused"`` or the natural reason."""
        if self.paused_at is not None:
            natural = (self.paused_at + PAUSE_LIMIT, "paused")
        else:
            natural = (self.play_start + self.play_seconds + self.paused_total, self.natural_reason)
        if self.stop_at is not None and self.stop_at <= natural[0]:
            return self.stop_at, "stop"
        return natural

    def exists_at(self, now: float) -> bool:
        """Whether TRTC still holds the task (starting or ingesting): what a stop or an update acts on."""
        return not self.broken and now < self.end()[0]

    def status_at(self, now: float) -> str:
        if self.broken or now < self.started_at or now >= self.end()[0]:
            return NOT_EXIST
        return IN_PROGRESS

    def end_reason_at(self, now: float) -> str | None:
        if self.broken:
            return "broken"
        ended, reason = self.end()
        return reason if now >= ended else None


def _media_reads(url: str) -> int | None:
    """``sim_reads=N`` (N >= 1) from a StreamUrl's query, or None."""
    values = parse_qs(urlsplit(url).query).get("sim_reads")
    try:
        return max(1, int(values[-1])) if values else None
    except ValueError:
        return None


def _media_seconds(url: str, default: float) -> float:
    values = parse_qs(urlsplit(url).query).get("sim_seconds")
    try:
        return max(0.0, float(values[-1])) if values else default
    except ValueError:
        return default


class TrtcSim(ServiceSim):
    """TRTC's stream-ingest API: TC3 signatures, UserSig checks, 20 QPS per action, lazy task lifecycle.

    Knobs (restored by ``reset()``): ``start_delay``, ``media_seconds``, ``adaptive_idle_timeout``,
    ``qps_limit``, ``content_type`` (set ``"application/json; charset=utf-8"`` to see the SDK swallow
    errors), ``regions``, ``session_token``, ``client_clock``. Credentials (not reset): ``secret_id``,
    ``sdk_app_id``, ``region``; the SecretKey and the SDK secret key are both ``state.key_for("trtc")``.
    """

    name = "trtc"
    url_path = ""
    secret_extras = ("sdk_secret_key",)
    stop_method = "stop_stream_ingest"
    request_ids = True
    not_applicable = {
        "no_artifact": "a stream ingest has no file: there is no 'finished without a result'",
        "gone_after_seen": "InProgress, TRTC's only live answer, is the default target, so a default wait ends "
        "before the task can vanish (seen-then-NotExist reads STOPPED: tests/test_trtc_wait.py)",
        "retry_after": "TRTC answers an over-limit call with HTTP 200 and Error.Code RequestLimitExceeded, never "
        "a Retry-After (the SDK shows no headers): it is backed off like any rate limit",
        "check-10": "a stream ingest has no video to download",
        "check-11": "a stream ingest hands out no download URL",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secret_id = DEFAULT_SECRET_ID
        self.sdk_app_id = DEFAULT_SDK_APP_ID
        self.region = DEFAULT_REGION
        self.tasks: dict[str, TrtcTask] = {}  # every task ever created, for assertions
        self._alive: dict[str, TrtcTask] = {}  # tasks not yet seen ended (pruned lazily)
        self._windows: dict[tuple[Any, str], deque[float]] = {}
        self._scripted: dict[str, deque[tuple[str, str]]] = {}
        self.start_bodies: list[dict[str, Any]] = []
        self.update_bodies: list[dict[str, Any]] = []
        self.stop_calls = 0
        self.throttled = 0
        #: Task id -> time before which Describe answers a Status the client does not know.
        self.unknown_until: dict[str, float] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], float], dict[str, Any]]] = {
            "StartStreamIngest": self._start,
            "DescribeStreamIngest": self._describe,
            "StopStreamIngest": self._stop,
            "UpdateStreamIngest": self._update,
        }
        self._defaults()

    def _defaults(self) -> None:
        self.start_delay = 0.5
        # How long a StreamUrl plays: the simulator's task duration (its --duration), at least 2 s.
        self.media_seconds = max(2.0, self.default_duration)
        #: Idle seconds before a stalled task ends when the request set no IdleTimeout ("adaptive").
        self.adaptive_idle_timeout = 60.0
        self.qps_limit: int | None = 20
        self.content_type = "application/json"
        self.regions: frozenset[str] | None = REGIONS
        #: The X-TC-Token temporary credentials must carry (None: any token is refused).
        self.session_token: str | None = None
        #: The clock the client's own times (X-TC-Timestamp, UserSig TLS.time) are checked against; None is
        #: the simulator clock. The SDK and TLSSigAPIv2 read ``time.time()``, so a test running the simulator
        #: on a FakeClock sets this to ``time.time``.
        self.client_clock: Callable[[], float] | None = None

    def reset(self) -> None:
        self.tasks.clear()
        self._alive.clear()
        self._windows.clear()
        self._scripted.clear()
        self.start_bodies.clear()
        self.update_bodies.clear()
        self.stop_calls = 0
        self.throttled = 0
        self.unknown_until.clear()
        self._defaults()

    @property
    def login(self) -> str | None:
        return self.secret_id

    @property
    def public_extra(self) -> dict[str, Any]:
        return {"region": self.region, "sdk_app_id": self.sdk_app_id}

    def serves_root(self, request: web.BaseRequest) -> bool:
        return "X-TC-Action" in request.headers

    def summary(self) -> dict[str, Any]:
        """``tasks``: held by TRTC (starting or ingesting); ``live``: ``InProgress`` (billed)."""
        now = self.state.clock()
        tasks = [task for task in list(self._alive.values()) if self._refresh(task, now)]
        return {"tasks": len(tasks), "live": sum(task.status == IN_PROGRESS for task in tasks)}

    # -- Python scripting ----------------------------------------------------------------------
    def add_task(
        self,
        stream_url: str = "https://media.example/sample.mp4",
        *,
        repeat_num: int = 1,
        max_duration: int | None = None,
        idle_timeout: int | None = None,
        room_id: str = "1234",
        user_id: str = "ingest_robot",
        created_at: float | None = None,
    ) -> str:
        """Create a task directly (tests, benchmarks), with no request and no checks; returns its TaskId."""
        now = self.state.clock() if created_at is None else created_at
        body = {"RoomId": room_id, "UserId": user_id, "StreamUrl": stream_url, "RepeatNum": repeat_num}
        if max_duration is not None:
            body["MaxDuration"] = max_duration
        if idle_timeout is not None:
            body["IdleTimeout"] = idle_timeout
        return self._create(body, now).task_id

    # -- reliability-suite interface (ServiceSim.script) ---------------------------------------
    def _script(self, history: str, duration: float) -> str:
        saved = self.start_delay
        try:
            # unknown_then_succeeds: an undocumented Status first, then InProgress (never NotExist between).
            half = history == "unknown_then_succeeds"
            self.start_delay = 10.0**7 if history == "long_running" else duration / 2 if half else duration
            url = "https://media.test/broken.mp4" if history == "fails" else "https://media.test/a.mp4?sim_seconds=3600"
            task_id = self.add_task(url)
            if history == "unknown_then_succeeds":
                self.unknown_until[task_id] = self.state.clock() + duration / 2
            return task_id
        finally:
            self.start_delay = saved

    def create_call(self) -> tuple[str, dict[str, Any]]:
        return "start_stream_ingest", {
            "room_id": "room-1",
            "stream_url": "https://media.test/intro.mp4?sim_seconds=60",
            "user_id": "robot_1",
        }

    def refuse_next_create(self) -> None:
        self.fail_next("StartStreamIngest", "InvalidParameter.StreamUrl", "StreamUrl cannot be pulled")

    def bounded_lifetime(self, task_id: str) -> float | None:
        task = self.tasks[task_id]
        if task.natural_reason != "never":
            return task.play_seconds
        idle = task.body.get("IdleTimeout")
        return None if idle is None else float(idle)

    def task(self, task_id: str) -> TrtcTask:
        """A task (ended ones included) with ``status`` and ``end_reason`` refreshed to now."""
        task = self.tasks[task_id]
        self._refresh(task, self.state.clock())
        return task

    def fail_next(self, action: str, code: str, message: str = "scripted failure", *, times: int = 1) -> None:
        """Answer the next ``times`` well-formed, signed calls of ``action`` with error ``code``."""
        if action not in self._handlers:
            raise ValueError(f"unknown action {action!r}; known: {sorted(self._handlers)}")
        self._scripted.setdefault(action, deque()).extend([(code, message)] * times)

    def _refresh(self, task: TrtcTask, now: float) -> bool:
        """Update ``status``/``end_reason``; forget ended tasks for ``summary()``. True while TRTC holds it."""
        task.status = task.status_at(now)
        task.end_reason = task.end_reason_at(now)
        exists = task.exists_at(now)
        if not exists:
            self._alive.pop(task.task_id, None)
        return exists

    def _plan(self, url: str, body: Mapping[str, Any]) -> tuple[float, str]:
        """How long a StreamUrl is ingested before the task ends on its own, and why."""
        media = math.inf if _media_reads(url) is not None else _media_seconds(url, self.media_seconds)
        if "stall" in url:
            idle = body.get("IdleTimeout")
            return media + (self.adaptive_idle_timeout if idle is None else float(idle)), "idle"
        repeat = body.get("RepeatNum", 1)
        if repeat == -1:
            minutes = body.get("MaxDuration")
            return (math.inf, "never") if minutes is None else (minutes * 60.0, "max_duration")
        return media * repeat, "media"

    def _create(self, body: dict[str, Any], now: float) -> TrtcTask:
        url = body["StreamUrl"]
        play_seconds, reason = self._plan(url, body)
        task = TrtcTask(
            task_id=f"sim-{uuid.uuid4().hex}",
            sdk_app_id=self.sdk_app_id,
            room_id=str(body["RoomId"]),
            user_id=body["UserId"],
            stream_url=url,
            created_at=now,
            started_at=now + self.start_delay,
            play_seconds=play_seconds,
            natural_reason=reason,
            play_start=now + self.start_delay,
            broken="broken" in url,
            volume=body.get("Volume", 100),
            tempo=body.get("Tempo", 1.0),
            reads_left=_media_reads(url),
            body=body,
        )
        self.tasks[task.task_id] = task
        if not task.broken:
            self._alive[task.task_id] = task
        self._refresh(task, now)
        return task

    # -- wire ----------------------------------------------------------------------------------
    def is_status_read(self, request: web.BaseRequest) -> bool:
        return request.headers.get("X-TC-Action") == "DescribeStreamIngest"

    def is_create(self, request: web.BaseRequest) -> bool:
        return request.method == "POST" and request.headers.get("X-TC-Action") == "StartStreamIngest"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/", self.dispatch)]

    def _answer(self, payload: dict[str, Any]) -> web.Response:
        body = json.dumps({"Response": {**payload, "RequestId": str(uuid.uuid4())}}).encode()
        # Set as a raw header: aiohttp would append "; charset=utf-8", which makes the SDK ignore errors.
        return web.Response(body=body, headers={"Content-Type": self.content_type})

    def _error(self, code: str, message: str) -> web.Response:
        return self._answer({"Error": {"Code": code, "Message": message}})

    def _check_auth(self, request: web.Request, payload: bytes) -> None:
        """The gateway's checks of the signature v3 headers, in this order."""
        match = _AUTHORIZATION.fullmatch(request.headers.get("Authorization", "").strip())
        if match is None:
            raise _Reject(
                "AuthFailure.InvalidAuthorization", "The Authorization header is not a TC3-HMAC-SHA256 signature."
            )
        signed = match["signed"].split(";")
        if signed != sorted(signed) or not {"content-type", "host"} <= set(signed):
            raise _Reject("AuthFailure.InvalidAuthorization", "SignedHeaders must list content-type and host, sorted.")
        raw_timestamp = request.headers.get("X-TC-Timestamp")
        if not raw_timestamp:
            raise _missing("Timestamp")
        if not _INT.fullmatch(raw_timestamp):
            raise _Reject("InvalidParameter", "The value of `Timestamp` is not an integer.")
        timestamp = int(raw_timestamp)
        clock = self.client_clock or self.state.clock
        if abs(timestamp - clock()) > TIMESTAMP_WINDOW:
            raise _Reject("AuthFailure.SignatureExpire", "Signature expired: the timestamp is more than 5 minutes off.")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["service"] != SERVICE or match["date"] != date:
            raise _Reject(
                "AuthFailure.SignatureFailure", "The credential scope does not match the service or timestamp."
            )
        if match["secret_id"] != self.secret_id:
            raise _Reject("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        token = request.headers.get("X-TC-Token")
        if token is not None and token != self.session_token:
            raise _Reject("AuthFailure.TokenFailure", "The token is invalid or expired.")
        expected = tc3_signature(
            self.state.key_for(self.name),
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query=request.query_string,
            headers={name: request.headers.get(name, "") for name in signed},
            signed_headers=signed,
            payload=payload,
            timestamp=timestamp,
        )
        if not hmac.compare_digest(expected.encode(), match["signature"].encode()):
            raise _Reject("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")

    def _check_call(self, request: web.Request) -> str:
        """Version, action and region; returns the action."""
        version = request.headers.get("X-TC-Version")
        if not version:
            raise _missing("Version")
        if version != API_VERSION:
            raise _Reject("NoSuchVersion", f"The API version `{version}` does not exist.")
        action = request.headers.get("X-TC-Action", "")
        if action not in self._handlers:
            raise _Reject("InvalidAction", f"The action `{action}` does not exist.")
        region = request.headers.get("X-TC-Region")
        if not region:
            raise _missing("Region", "MissingParameter.Region")
        if self.regions is not None and region not in self.regions:
            raise _Reject("UnsupportedRegion", f"The region `{region}` is not supported by this action.")
        return action

    def _admit(self, sdk_app_id: Any, action: str, now: float) -> bool:
        """Sliding 1 s window per (SdkAppId, action), counted on arrival; a refused request does not count."""
        if self.qps_limit is None:
            return True
        window = self._windows.setdefault((sdk_app_id, action), deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.qps_limit:
            self.throttled += 1
            return False
        window.append(now)
        return True

    async def dispatch(self, request: web.Request) -> web.Response:
        if "X-TC-Action" not in request.headers:
            raise web.HTTPNotFound()
        now = self.state.clock()
        payload = await request.read()
        try:
            self._check_auth(request, payload)
            action = self._check_call(request)
            try:
                body = json.loads(payload) if payload.strip() else {}
            except ValueError:  # includes UnicodeDecodeError
                body = None
            if not isinstance(body, dict):
                raise _Reject("InvalidParameter.BodyParamsError", "The request body is not a JSON object.")
            if not self._admit(body.get("SdkAppId"), action, now):
                raise _Reject("RequestLimitExceeded", "Your request rate exceeds the limit of this action.")
            scripted = self._scripted.get(action)
            if scripted:
                raise _Reject(*scripted.popleft())
            return self._answer(self._handlers[action](body, now))
        except _Reject as exc:
            return self._error(exc.code, exc.message)

    # -- actions -------------------------------------------------------------------------------
    def _check_app(self, body: Mapping[str, Any]) -> int:
        app_id = body.get("SdkAppId")
        if app_id is None:
            raise _missing("SdkAppId", "MissingParameter.SdkAppId")
        if not isinstance(app_id, int) or isinstance(app_id, bool) or app_id <= 0:
            raise _Reject("InvalidParameter.SdkAppId", "SdkAppId must be a positive integer.")
        if app_id != self.sdk_app_id:
            raise _Reject("FailedOperation.SdkAppIdNotExist", f"SdkAppId {app_id} does not exist.")
        return app_id

    def _task_id(self, body: Mapping[str, Any]) -> str:
        task_id = body.get("TaskId")
        if task_id is None or task_id == "":
            raise _missing("TaskId", "MissingParameter.TaskId")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise _Reject("InvalidParameter.TaskId", "TaskId is malformed.")
        return task_id

    def _live_task(self, body: Mapping[str, Any], now: float) -> TrtcTask:
        """The task a Stop or an Update acts on; TaskNotExist or TaskFinished when TRTC no longer holds it."""
        task = self.tasks.get(self._task_id(body))
        if task is None or task.broken:
            raise _Reject("FailedOperation.TaskNotExist", "The task does not exist.")
        if not self._refresh(task, now):
            if task.end_reason == "stop":
                raise _Reject("FailedOperation.TaskNotExist", "The task does not exist.")
            raise _Reject("FailedOperation.TaskFinished", "The task has finished.")
        return task

    def _start(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        app_id = self._check_app(body)
        room_id, room_type = body.get("RoomId"), body.get("RoomIdType")
        if room_id is None or room_id == "":
            raise _missing("RoomId", "MissingParameter.RoomId")
        if room_type is None:
            raise _missing("RoomIdType")
        if room_type not in (0, 1) or isinstance(room_type, bool):
            raise _out_of_range("RoomIdType", "0 (string) or 1 (integer)")
        if room_type == 1:
            if not (isinstance(room_id, str) and room_id.isdigit() and 1 <= int(room_id) <= 4294967294):
                raise _Reject("InvalidParameter.RoomId", "RoomId must be an integer in [1, 4294967294] (RoomIdType 1).")
        elif not isinstance(room_id, str) or len(room_id.encode()) > 64:
            raise _Reject("InvalidParameter.StrRoomId", "RoomId must be a string of at most 64 bytes (RoomIdType 0).")
        user_id = body.get("UserId")
        if user_id is None or user_id == "":
            raise _missing("UserId", "MissingParameter.UserId")
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            raise _Reject("InvalidParameter.UserId", "UserId must be 1-32 letters, digits, '_' or '-'.")
        user_sig = body.get("UserSig")
        if user_sig is None or user_sig == "":
            raise _missing("UserSig", "MissingParameter.UserSig")
        url = body.get("StreamUrl")
        if url is None and isinstance(body.get("SourceUrl"), list) and body["SourceUrl"]:
            url = body["SourceUrl"][0]  # the deprecated field
        if url is None or url == "":
            raise _missing("StreamUrl")
        _check_stream_url(url)
        repeat = _int_in(body, "RepeatNum", -1, 1000)
        if repeat == 0:
            raise _out_of_range("RepeatNum", "[-1, 1000], 0 excluded")
        _int_in(body, "MaxDuration", 1, 10080)
        _int_in(body, "Volume", 0, 200, code="InvalidParameter.Volume")
        _int_in(body, "IdleTimeout", 0, 600)
        _int_in(body, "SeekSecond", 0, 2**31 - 1)
        tempo = body.get("Tempo")
        if tempo is not None and (
            not isinstance(tempo, int | float) or isinstance(tempo, bool) or not 0.5 <= tempo <= 2.0
        ):
            raise _out_of_range("Tempo", "[0.5, 2.0]")
        clock = self.client_clock or self.state.clock
        why = check_user_sig(
            user_sig if isinstance(user_sig, str) else "",
            user_id=user_id,
            sdk_app_id=app_id,
            sdk_secret_key=self.state.key_for(self.name),
            now=clock(),
        )
        if why is not None:
            raise _Reject("InvalidParameter.UserSig", why)
        task = self._create({**body, "StreamUrl": url}, now)
        self.start_bodies.append(body)
        return {"TaskId": task.task_id}

    def _describe(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        self._check_app(body)
        task = self.tasks.get(self._task_id(body))
        if task is None or not self.listed(task.task_id):
            return {"Status": NOT_EXIST}
        if now < self.unknown_until.get(task.task_id, -1.0):
            return {"Status": "Queued"}  # not a documented Status
        self._refresh(task, now)
        status = task.status
        if status == IN_PROGRESS and task.reads_left is not None:
            task.reads_left -= 1
            if task.reads_left == 0:  # the media ends now: the next read finds the task gone
                task.reads_left = None
                task.play_seconds, task.natural_reason = now - task.play_start - task.paused_total, "media"
                self._refresh(task, now)
        return {"Status": status}

    def _stop(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        self.stop_calls += 1
        self._check_app(body)
        task = self._live_task(body, now)
        task.stop_at = now
        self._refresh(task, now)
        return {}

    def _update(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        self._check_app(body)
        task = self._live_task(body, now)
        url = body.get("StreamUrl")
        if url is not None:
            _check_stream_url(url)
        volume = _int_in(body, "Volume", 0, 200, code="InvalidParameter.Volume")
        tempo = body.get("Tempo")
        if tempo is not None and (
            not isinstance(tempo, int | float) or isinstance(tempo, bool) or not 0.5 <= tempo <= 2.0
        ):
            raise _out_of_range("Tempo", "[0.5, 2.0]")
        pause = body.get("IsPause")
        if pause is not None and not isinstance(pause, bool):
            raise _Reject("InvalidParameter", "IsPause must be a boolean.")
        self.update_bodies.append(body)
        if volume is not None:
            task.volume = volume
        if tempo is not None:
            task.tempo = float(tempo)
        if url is not None and url != task.stream_url:  # the new source plays from its start
            task.stream_url = url
            task.play_seconds, task.natural_reason = self._plan(url, task.body)
            task.reads_left = _media_reads(url)
            task.play_start, task.paused_total = max(now, task.started_at), 0.0
            if task.paused_at is not None:
                task.paused_at = now
        if pause is True and task.paused_at is None:
            task.paused_at = now
        elif pause is False and task.paused_at is not None:
            task.paused_total += now - max(task.paused_at, task.play_start)
            task.paused_at = None
        self._refresh(task, now)
        return {}


def _check_stream_url(url: Any) -> None:
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in STREAM_SCHEMES or not urlsplit(url).netloc:
        raise _Reject("InvalidParameter.StreamUrl", f"StreamUrl must be a {', '.join(STREAM_SCHEMES)} URL.")


def _int_in(
    body: Mapping[str, Any], key: str, low: int, high: int, *, code: str = "InvalidParameter.OutOfRange"
) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _out_of_range(key, f"an integer in [{low}, {high}]", code)
    return value
