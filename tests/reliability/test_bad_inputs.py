"""The bad-input catalogue: every parameter a user types, given a bad value, is refused clearly.

One table per public operator and sensor: (parameter, bad value, when it is refused, error class,
what the message also says). Every row asserts the exact class (``AvatarInputError`` or a
subclass), that the message names the parameter as the user wrote it, that nothing reached the
simulator (no service request, no file-host request) and that nothing appeared in the test's folder
(no file, no temporary part). A row refused at ``PARSE`` fails in the constructor, as when the DAG
file is parsed; a ``RUN`` row is rendered through Airflow's templating and fails in ``execute``,
before any request (the rule is in docs/architecture.md, "Bad input").

The list of classes comes from the package (every operator and sensor class in ``operators/*.py``
and ``sensors/*.py``): a new class, or a new ``__init__`` parameter, without rows fails
:func:`test_every_public_parameter_has_rows`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseOperator

import airflow_provider_avatar.operators
import airflow_provider_avatar.sensors
from airflow_provider_avatar.exceptions import AvatarDestinationError, AvatarInputError
from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.operators.dreamface import DreamFaceCreateAvatarOperator
from airflow_provider_avatar.operators.minimax import MiniMaxCreateVideoOperator
from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator
from airflow_provider_avatar.operators.trtc import TrtcStartStreamIngestOperator, TrtcStopStreamIngestOperator
from airflow_provider_avatar.operators.zego import (
    ZegoCreateDigitalHumanStreamOperator,
    ZegoDriveByTextOperator,
    ZegoStopDigitalHumanStreamOperator,
)
from airflow_provider_avatar.sensors.base import AvatarStreamSensor, AvatarTaskSensor
from airflow_provider_avatar.sensors.dreamface import DreamFaceAvatarSensor
from airflow_provider_avatar.sensors.minimax import MiniMaxVideoSensor
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor
from airflow_provider_avatar.sensors.trtc import TrtcStreamIngestSensor
from airflow_provider_avatar.sensors.zego import ZegoDigitalHumanStreamSensor
from airflow_provider_avatar.status import TaskState, TaskStatus
from airflow_provider_avatar.testing.simulator import Simulator

PARSE, RUN = "parse", "run"
#: A template that renders to "" at run time (a missing param or XCom), through Airflow's templating.
BLANK = "{{ params.get('missing', '') }}"
#: A connection id that no connection has.
UNDEFINED_CONN = "avatar_tests_no_such_connection"


@dataclass(frozen=True)
class Bad:
    """One bad value: ``param=value`` (plus ``also`` kwargs) is refused at ``at`` with ``error``."""

    param: str
    value: Any
    at: str
    says: str = ""  # a regex the message must also match
    error: type[AvatarInputError] = AvatarInputError
    also: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class Table:
    """A class's rows, the kwargs that make it valid, its service (for the simulated connection), and
    the parameters that have nothing to check, each with the reason."""

    service: str
    valid: Callable[[Path], dict[str, Any]]
    rows: list[Bad]
    unchecked: dict[str, str] = field(default_factory=dict)


def conn_rows(param: str) -> list[Bad]:
    return [
        Bad(param, BLANK, RUN, "empty", name="renders-empty"),
        Bad(param, UNDEFINED_CONN, RUN, "not defined", name="undefined"),
    ]


def text_rows(param: str, *, wrong_type: Any = 5, says: str = "") -> list[Bad]:
    """A required text parameter (templated, so checked at run time)."""
    return [
        Bad(param, "", RUN, says, name="empty"),
        Bad(param, "   ", RUN, says, name="blank"),
        Bad(param, BLANK, RUN, says, name="renders-empty"),
        Bad(param, wrong_type, RUN, says, name="wrong-type"),
    ]


def task_id_rows(param: str = "remote_task_id") -> list[Bad]:
    return [*text_rows(param), Bad(param, None, RUN, name="none (an upstream pushed nothing)")]


# -- sensors -----------------------------------------------------------------------------------------
def sensor_table(cls: type[AvatarTaskSensor], service: str) -> Table:
    generic = cls in (AvatarTaskSensor, AvatarStreamSensor)
    conn_param = "conn_id" if generic else f"{service}_conn_id"

    def valid(tmp: Path) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"remote_task_id": "task-1", "deferrable": False, "mode": "poke", "timeout": 60}
        return {**kwargs, "service": service} if generic else kwargs

    rows = [
        *task_id_rows(),
        Bad("remote_task_id", BLANK, RUN, also={"deferrable": True}, name="renders-empty-deferrable"),
        *conn_rows(conn_param),
        Bad("poll_interval", 0, PARSE, "greater than 0"),
        Bad("poll_interval", -5, PARSE, "greater than 0"),
        Bad("poll_interval", "fast", PARSE, "a number"),
        Bad("target_states", ["DONE"], PARSE, "unknown task state 'DONE'"),
        Bad("target_states", [], PARSE, "must not be empty"),
        Bad("target_states", 5, PARSE, name="wrong-type"),
        Bad("failure_states", ["NOPE"], PARSE, "unknown task state 'NOPE'"),
        Bad("not_found_grace", -1, PARSE, "0 or more"),
        Bad("not_found_grace", "60s", PARSE, "a number"),
        Bad("error_window", -1, PARSE, "0 or more"),
        Bad("error_window", None, PARSE, "a number"),
        Bad("deferrable", "yes", PARSE, "True or False"),
    ]
    if issubclass(cls, AvatarStreamSensor):
        rows.append(Bad("stop_requested", "yes", PARSE, "True or False"))
        rows.append(
            Bad("target_states", ["STOPPED"], PARSE, "stop_requested", also={"mode": "reschedule"}, name="reschedule")
        )
    if generic:
        rows += [Bad("service", "nope", PARSE, "unknown service"), Bad("service", "", PARSE, "unknown service")]
    return Table(service, valid, rows)


# -- operators -----------------------------------------------------------------------------------------
def _status(service: str = "scenext") -> dict[str, Any]:
    return TaskStatus(
        service=service, remote_task_id="task-1", state=TaskState.SUCCEEDED, video_url="https://cdn.test/v.mp4"
    ).to_dict()


def download_valid(tmp: Path) -> dict[str, Any]:
    return {"source": _status(), "destination": str(tmp / "out" / "video.mp4")}


DOWNLOAD = Table(
    "scenext",
    download_valid,
    [
        *text_rows("source", says="TaskStatus dict"),
        Bad("source", {"state": "SUCCEEDED"}, RUN, "service", name="dict-without-fields"),
        Bad("source", "{'service': 'scenext'", RUN, "cannot be parsed", name="broken-dict-text"),
        Bad("source", "ftp://files.test/v.mp4", RUN, "http", name="not-http"),
        Bad("source", "https:///v.mp4", RUN, "host", name="no-host"),
        Bad("destination", "", RUN, "empty"),
        Bad("destination", BLANK, RUN, "empty", name="renders-empty"),
        Bad("destination", 5, RUN, "text", name="wrong-type"),
        Bad("destination", "videos/v.mp4", RUN, "relative path", name="relative"),
        Bad("destination", "{tmp}/exists.mp4", RUN, "exists; pass overwrite=True", AvatarDestinationError),
        Bad("destination", "{tmp}/folder", RUN, "is a directory", AvatarDestinationError, name="directory"),
        Bad(
            "destination",
            "{tmp}/folder",
            RUN,
            "is a directory",
            AvatarDestinationError,
            also={"overwrite": True},
            name="directory-overwrite",
        ),
        Bad("destination", "{tmp}/afile/v.mp4", RUN, "cannot be written", AvatarDestinationError, name="unwritable"),
        Bad("service", "nope", PARSE, "unknown service"),
        Bad("service", "", PARSE, "unknown service"),
        Bad("service", "zego", RUN, "scenext", name="disagrees-with-the-status"),
        *conn_rows("conn_id"),
        Bad("overwrite", "no", PARSE, "True or False"),
        Bad("overwrite", None, PARSE, "True or False"),
        Bad("chunk_size", 0, PARSE, "greater than 0"),
        Bad("chunk_size", "1MB", PARSE, "whole number"),
        Bad("chunk_size", 1.5, PARSE, "whole number"),
        Bad("read_timeout", 0, PARSE, "greater than 0"),
        Bad("read_timeout", "5m", PARSE, "a number"),
    ],
)

SCENEXT = Table(
    "scenext",
    lambda tmp: {"question": "Why is the sky blue?"},
    [
        Bad("question", "", RUN, "required", also={"question_images": None}),
        Bad("question", BLANK, RUN, "required", name="renders-empty"),
        Bad("question", 5, RUN, "text", name="wrong-type"),
        Bad("question_images", [""], RUN, "non-empty"),
        Bad("question_images", "https://img.test/q.png", RUN, "list", name="a-string-not-a-list"),
        Bad("question_images", BLANK, RUN, "list", name="renders-empty"),
        Bad("answer", 5, RUN, "text", name="wrong-type"),
        Bad("answer", BLANK, RUN, "empty", name="renders-empty"),
        Bad("answer_images", "https://img.test/a.png", RUN, "list", name="a-string-not-a-list"),
        Bad("answer_images", [""], RUN, "non-empty"),
        Bad("quality", "", RUN, "one of l, m, h"),
        Bad("quality", "x", RUN, "one of l, m, h"),
        Bad("quality", 5, RUN, "one of l, m, h", name="wrong-type"),
        Bad("quality", BLANK, RUN, "one of l, m, h", name="renders-empty"),
        Bad("notify_url", "", RUN, "http"),
        Bad("notify_url", "ftp://hooks.test/x", RUN, "http", name="not-http"),
        Bad("notify_url", BLANK, RUN, "http", name="renders-empty"),
        *conn_rows("scenext_conn_id"),
    ],
)

ZEGO_CREATE = Table(
    "zego",
    lambda tmp: {"digital_human_id": "dh-1", "room_id": "room-1", "stream_id": "stream-1"},
    [
        *text_rows("digital_human_id"),
        *text_rows("room_id"),
        Bad("room_id", "r" * 129, RUN, "at most 128", name="too-long"),
        Bad("stream_id", BLANK, RUN, "empty", name="renders-empty"),
        Bad("stream_id", "bad id!", RUN, "letters, digits", name="bad-alphabet"),
        Bad("stream_id", 5, RUN, name="wrong-type"),
        Bad("ttl", 5, PARSE, r"\[10, 86400\]"),
        Bad("ttl", "60", PARSE, "integer", name="wrong-type"),
        Bad("ttl", True, PARSE, "integer", name="bool"),
        Bad("max_idle_time", 10, PARSE, r"\[30, 86400\]"),
        Bad("max_idle_time", None, PARSE, "integer", name="none"),
        Bad("background_color", "red", RUN, "#RRGGBB"),
        Bad("background_color", 5, RUN, "#RRGGBB", name="wrong-type"),
        Bad("background_color", BLANK, RUN, "#RRGGBB", name="renders-empty"),
        Bad("layout", {"Top": -1}, RUN, r"\[0, 10000\]"),
        Bad("layout", {"Depth": 1}, RUN, "unknown keys"),
        Bad("layout", BLANK, RUN, "object", name="renders-empty"),
        Bad("video_config", {"Width": 5000, "Height": 100}, RUN, r"\[2, 1920\]"),
        Bad("video_config", BLANK, RUN, "object", name="renders-empty"),
        Bad("assets", [{"AssetUrl": "ftp://img.test/a.png"}], RUN, "http"),
        Bad("assets", BLANK, RUN, "list", name="renders-empty"),
        Bad("assets", {"AssetUrl": "https://img.test/a.png"}, RUN, "list", name="an-object-not-a-list"),
        *conn_rows("zego_conn_id"),
    ],
)

ZEGO_DRIVE = Table(
    "zego",
    lambda tmp: {"remote_task_id": "task-1", "text": "Hello", "timbre_id": "voice-1"},
    [
        *task_id_rows(),
        *text_rows("text"),
        Bad("text", "x" * 1801, RUN, "at most 1800", name="too-long"),
        *text_rows("timbre_id"),
        Bad("speech_rate", 600, PARSE, r"\[-500, 500\]"),
        Bad("speech_rate", "fast", PARSE, "integer", name="wrong-type"),
        Bad("pitch_rate", -501, PARSE, r"\[-500, 500\]"),
        Bad("volume", 0, PARSE, r"\[1, 100\]"),
        Bad("volume", 101, PARSE, r"\[1, 100\]"),
        Bad("interrupt_mode", 2, PARSE, r"\[0, 1\]"),
        Bad("interrupt_mode", "1", PARSE, "integer", name="wrong-type"),
        *conn_rows("zego_conn_id"),
    ],
)

STOP = [*task_id_rows()]
ZEGO_STOP = Table("zego", lambda tmp: {"remote_task_id": "task-1"}, [*STOP, *conn_rows("zego_conn_id")])
TRTC_STOP = Table("trtc", lambda tmp: {"remote_task_id": "task-1"}, [*STOP, *conn_rows("trtc_conn_id")])

TRTC_START = Table(
    "trtc",
    lambda tmp: {"room_id": "room-1", "stream_url": "https://media.test/v.mp4", "user_id": "robot-1"},
    [
        *text_rows("room_id", wrong_type=["room-1"]),
        Bad("room_id", "room-1", RUN, "32-bit", also={"room_id_type": 1}, name="not-an-integer-room"),
        *text_rows("stream_url"),
        Bad("stream_url", "ftp://media.test/v.mp4", RUN, "rtmp", name="not-a-media-url"),
        Bad("user_id", BLANK, RUN, "empty", name="renders-empty"),
        Bad("user_id", 5, RUN, name="wrong-type"),
        Bad("user_sig", "", PARSE, "non-empty"),
        Bad("user_sig", 5, PARSE, "non-empty", name="wrong-type"),
        Bad("room_id_type", 2, PARSE, r"\[0, 1\]"),
        Bad("room_id_type", "1", PARSE, "integer", name="wrong-type"),
        Bad("repeat_num", 0, PARSE, "-1 \\(loop\\) or 1..1000"),
        Bad("repeat_num", 1001, PARSE, "1000"),
        Bad("repeat_num", "1", PARSE, "integer", name="wrong-type"),
        Bad("max_duration", 0, PARSE, r"\[1, 10080\]", also={"repeat_num": -1}),
        Bad("max_duration", 30, PARSE, "only with repeat_num -1", name="without-a-loop"),
        Bad("idle_timeout", 601, PARSE, r"\[0, 600\]"),
        Bad("idle_timeout", "60", PARSE, "integer", name="wrong-type"),
        Bad("volume", 201, PARSE, r"\[0, 200\]"),
        Bad("tempo", 3.0, PARSE, r"\[0.5, 2.0\]"),
        Bad("tempo", "fast", PARSE, "number", name="wrong-type"),
        Bad("seek_second", -1, PARSE, "integer"),
        Bad("auto_push", "yes", PARSE, "true or false"),
        Bad("private_map_key", "", PARSE, "non-empty"),
        Bad("enable_progress", 1, PARSE, "true or false"),
        *conn_rows("trtc_conn_id"),
    ],
)

MINIMAX = Table(
    "minimax",
    lambda tmp: {"prompt": "A cat surfing"},
    [
        Bad("prompt", "", RUN, "required"),
        Bad("prompt", BLANK, RUN, "required", name="renders-empty"),
        Bad("prompt", 5, RUN, "text", name="wrong-type"),
        Bad("prompt", "x" * 2001, RUN, "at most 2000", name="too-long"),
        *text_rows("model", says="non-empty"),
        Bad("duration", 7, RUN, "one of 6, 10"),
        Bad("duration", "seven", RUN, "one of 6, 10", name="wrong-type"),
        Bad("duration", BLANK, RUN, "empty", name="renders-empty"),
        Bad("resolution", "999P", RUN, "supports resolution"),
        Bad("resolution", BLANK, RUN, "empty", name="renders-empty"),
        Bad("resolution", 5, RUN, "supports resolution", name="wrong-type"),
        Bad("first_frame_image", "frame.png", RUN, "absolute local path", name="relative"),
        Bad("first_frame_image", "{tmp}/missing.png", RUN, "cannot be read", name="missing-file"),
        Bad("first_frame_image", "{tmp}/notes.txt", RUN, r"\.jpg, \.png or \.webp", name="not-an-image"),
        Bad("first_frame_image", BLANK, RUN, "empty", name="renders-empty"),
        Bad("first_frame_image", 5, RUN, "text", name="wrong-type"),
        Bad("prompt_optimizer", "no", PARSE, "True or False"),
        Bad("fast_pretreatment", "yes", PARSE, "True or False"),
        Bad("callback_url", "", RUN, "http"),
        Bad("callback_url", "ftp://hooks.test/x", RUN, "http", name="not-http"),
        Bad("callback_url", BLANK, RUN, "http", name="renders-empty"),
        Bad("extra_body", BLANK, RUN, "object", name="renders-empty"),
        Bad("extra_body", "[1, 2]", RUN, "object", name="not-an-object"),
        Bad("extra_body", {"model": "other"}, RUN, "model", name="overrides-a-parameter"),
        *conn_rows("minimax_conn_id"),
    ],
)

DREAMFACE = Table(
    "dreamface",
    lambda tmp: {"body": {"prompt": "hello"}, "create_path": "avatar/submit"},
    [
        Bad("body", "", RUN, "JSON"),
        Bad("body", BLANK, RUN, "JSON", name="renders-empty"),
        Bad("body", "not json", RUN, "not JSON"),
        Bad("body", {}, RUN, "non-empty JSON object", name="empty-object"),
        Bad("body", 5, RUN, "JSON object", name="wrong-type"),
        Bad("body", {"when": object()}, RUN, "JSON-serializable", name="not-serializable"),
        Bad("create_path", BLANK, RUN, "empty", name="renders-empty"),
        Bad("create_path", "https://other.test/submit", RUN, "relative", name="a-url"),
        Bad("create_path", 5, RUN, name="wrong-type"),
        *conn_rows("dreamface_conn_id"),
    ],
)

CATALOGUE: dict[type[BaseOperator], Table] = {
    AvatarVideoDownloadOperator: DOWNLOAD,
    ScenextCreateVideoOperator: SCENEXT,
    ZegoCreateDigitalHumanStreamOperator: ZEGO_CREATE,
    ZegoDriveByTextOperator: ZEGO_DRIVE,
    ZegoStopDigitalHumanStreamOperator: ZEGO_STOP,
    TrtcStartStreamIngestOperator: TRTC_START,
    TrtcStopStreamIngestOperator: TRTC_STOP,
    MiniMaxCreateVideoOperator: MINIMAX,
    DreamFaceCreateAvatarOperator: DREAMFACE,
    AvatarTaskSensor: sensor_table(AvatarTaskSensor, "scenext"),
    AvatarStreamSensor: sensor_table(AvatarStreamSensor, "zego"),
    ScenextVideoSensor: sensor_table(ScenextVideoSensor, "scenext"),
    ZegoDigitalHumanStreamSensor: sensor_table(ZegoDigitalHumanStreamSensor, "zego"),
    TrtcStreamIngestSensor: sensor_table(TrtcStreamIngestSensor, "trtc"),
    MiniMaxVideoSensor: sensor_table(MiniMaxVideoSensor, "minimax"),
    DreamFaceAvatarSensor: sensor_table(DreamFaceAvatarSensor, "dreamface"),
}


# -- the package's public classes and their parameters ----------------------------------------------
def public_classes() -> list[type[BaseOperator]]:
    """Every operator and sensor class defined in ``operators/*.py`` and ``sensors/*.py``."""
    found = []
    for package in (airflow_provider_avatar.operators, airflow_provider_avatar.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseOperator)
                    and obj.__module__ == module.__name__
                    and not name.startswith("_")
                ):
                    found.append(obj)
    return found


def user_parameters(cls: type) -> set[str]:
    """The ``__init__`` parameters of ``cls`` and of the provider classes it passes ``**kwargs`` to,
    minus those a subclass sets itself (a service sensor fixes ``service`` and ``conn_id``)."""
    params: set[str] = set()
    own = True
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_provider_avatar.") or "__init__" not in vars(klass):
            continue
        names = [
            p.name
            for p in inspect.signature(klass.__init__).parameters.values()
            if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        params.update(names if own else [n for n in names if n not in ("service", "conn_id") or "service" in params])
        own = False
    if "service" not in params:
        params.discard("conn_id")
    return params


def test_every_public_parameter_has_rows() -> None:
    classes = public_classes()
    assert set(classes) == set(CATALOGUE), "a public operator or sensor has no table (or a table no class)"
    for cls in classes:
        table = CATALOGUE[cls]
        covered = {row.param for row in table.rows}
        assert not covered & set(table.unchecked), f"{cls.__name__}: a parameter both has rows and is unchecked"
        assert user_parameters(cls) == covered | set(table.unchecked), cls.__name__


def _cases() -> Iterator[Any]:
    for cls, table in CATALOGUE.items():
        for row in table.rows:
            label = row.name or repr(row.value)[:24]
            yield pytest.param(cls, row, id=f"{cls.__name__}-{row.param}-{label}")


# -- running one row ----------------------------------------------------------------------------------
def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dag", run_id="run", task_id="task", map_index=-1, start_date=None)
    return {"ti": ti, "params": {}}


def _fill(value: Any, tmp: Path) -> Any:
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


def _names(message: str, param: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(param)}(?!\w)", message) is not None


@pytest.mark.usefixtures("fake_clock")
@pytest.mark.parametrize(("cls", "row"), list(_cases()))
def test_a_bad_value_is_refused_before_anything_is_sent(
    cls: type[BaseOperator],
    row: Bad,
    use_connection: Callable[..., Simulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = CATALOGUE[cls]
    sim = use_connection(table.service)
    (tmp_path / "exists.mp4").write_bytes(b"an earlier video")
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_bytes(b"a file, not a folder")
    (tmp_path / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)  # a relative path that slipped through would show up here
    before = _tree(tmp_path)
    kwargs = {**table.valid(tmp_path), **row.also, row.param: _fill(row.value, tmp_path)}

    if row.at == PARSE:
        with pytest.raises(AvatarInputError) as info:
            cls(task_id="task", **kwargs)
    else:
        task = cls(task_id="task", **kwargs)  # templated: may be a template until the run
        context = _context()
        with pytest.raises(AvatarInputError) as info:
            task.render_template_fields(context)
            task.execute(context)

    error, message = info.value, str(info.value)
    assert type(error) is row.error, message
    assert _names(message, row.param), f"the message does not name {row.param!r}: {message}"
    assert re.search(row.says, message), message
    assert sim.requests() == [], "a request reached the simulator"
    assert _tree(tmp_path) == before, "something was written"
