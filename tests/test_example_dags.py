"""The example DAGs import cleanly and run green with ``dag.test()`` against the simulator."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_avatar.testing.simulator import Simulator, sample_video
from tests.conftest import REPO, SENTINEL_KEY, SENTINEL_ZEGO_SECRET, SENTINELS

DAGS = REPO / "dags_examples"


def _dagbag() -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_example_dags_import_without_errors() -> None:
    bag = _dagbag()
    assert bag.import_errors == {}  # type: ignore[attr-defined]
    assert {"example_scenext_video", "example_zego_digital_human"} <= set(bag.dag_ids)  # type: ignore[attr-defined]
    assert len(bag.dag_ids) == len(list(DAGS.glob("example_*.py")))  # type: ignore[attr-defined]


def test_scenext_example_runs_green(
    scenext_conn: Simulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    monkeypatch.setenv("AVATAR_EXAMPLE_POLL_INTERVAL", "0.5")
    scenext_conn.scenext.default_duration = 1.5  # type: ignore[attr-defined]
    dag = _dagbag().get_dag("example_scenext_video")  # type: ignore[attr-defined]
    run = dag.test(run_conf={"output_dir": str(tmp_path), "question": "Why is the sky blue?"})
    assert run.state == "success", logs()[-3000:]
    (video,) = tmp_path.glob("scenext-*.mp4")
    assert hashlib.sha256(video.read_bytes()).digest() == hashlib.sha256(sample_video()).digest()
    assert [r.method for r in scenext_conn.requests("scenext")].count("POST") == 1
    xcoms = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    assert xcoms["download_video"]["path"] == str(video)
    everything = logs() + repr(xcoms)
    assert SENTINEL_KEY not in everything
    assert "Signature=" not in everything  # signed URLs are logged and stored without their query


def _zego_run(sim: Simulator, monkeypatch: pytest.MonkeyPatch, **conf: str) -> tuple[object, dict[str, object]]:
    monkeypatch.setenv("AVATAR_EXAMPLE_POLL_INTERVAL", "0.2")
    zego = sim.zego  # type: ignore[attr-defined]
    zego.start_delay = zego.stop_delay = zego.linger = 0.5
    dag = _dagbag().get_dag("example_zego_digital_human")  # type: ignore[attr-defined]
    run = dag.test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states


def test_zego_example_runs_green_and_stops_the_stream(
    zego_conn: Simulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    run, states = _zego_run(zego_conn, monkeypatch, text="Hello from a test")
    assert run.state == "success", logs()[-3000:]  # type: ignore[attr-defined]
    assert set(states.values()) == {"success"}
    zego = zego_conn.zego  # type: ignore[attr-defined]
    (task_id,) = zego.tasks
    task = zego.task(task_id)
    assert task.texts == ["Hello from a test"]
    assert task.end_reason == "stop" and task.ttl == 1800 and task.max_idle == 300
    xcoms = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    assert xcoms["create_stream"] == task_id
    assert xcoms["wait_until_live"]["state"] == "STREAMING"
    assert xcoms["stop_stream"] == {"remote_task_id": task_id, "outcome": "stopped"}
    actions = [r.path.split("Action=")[1].split("&")[0] for r in zego_conn.requests("zego")]
    assert actions.count("CreateDigitalHumanStreamTask") == 1 and actions[-1] == "StopDigitalHumanStreamTask"
    everything = logs() + repr(xcoms)
    assert SENTINEL_ZEGO_SECRET not in everything
    assert "Signature=" not in everything  # request signatures are never logged
    metadata_db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    assert SENTINEL_ZEGO_SECRET.encode() not in metadata_db.read_bytes()  # trigger kwargs, XCom, logs tables


def test_zego_teardown_stops_the_stream_when_the_drive_fails(
    zego_conn: Simulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    run, states = _zego_run(zego_conn, monkeypatch, timbre_id="missing-voice")
    assert states == {
        "create_stream": "success",
        "wait_until_live": "success",
        "speak": "failed",  # ZEGO 400000004: timbre not found
        "stop_stream": "success",  # the teardown still ran
    }, logs()[-3000:]
    assert run.state == "failed"  # type: ignore[attr-defined]
    zego = zego_conn.zego  # type: ignore[attr-defined]
    (task_id,) = zego.tasks
    assert zego.task(task_id).end_reason == "stop"
    text = logs()
    assert "400000004" in text and SENTINEL_ZEGO_SECRET not in text


def _trtc_states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_trtc_example_runs_green_and_leaves_no_ingest(
    trtc_conn: Simulator, airflow_db: None, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    monkeypatch.setenv("AVATAR_EXAMPLE_POLL_INTERVAL", "0.2")
    trtc = trtc_conn.services["trtc"]
    dag = _dagbag().get_dag("example_trtc_stream_ingest")  # type: ignore[attr-defined]
    # live for two status reads (one per wait), however slow the machine; then it has played
    run = dag.test(run_conf={"stream_url": "https://media.test/intro.mp4?sim_reads=2"})
    assert run.state == "success", logs()[-3000:]
    assert set(_trtc_states(run).values()) == {"success"}
    xcoms = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    task_id = xcoms["start_ingest"]
    assert xcoms["wait_until_live"]["state"] == "STREAMING"
    assert xcoms["wait_until_played"]["state"] == "STOPPED"
    # the media ran out before the teardown: it finds the task already ended
    assert xcoms["stop_ingest"] == {"remote_task_id": task_id, "outcome": "already_stopped"}
    assert len(trtc.start_bodies) == 1 and trtc.summary()["live"] == 0
    assert trtc.start_bodies[0]["IdleTimeout"] == 60
    secret = SENTINELS["trtc"]  # the SecretKey and the SDK secret key of the connection
    user_sig = trtc.start_bodies[0]["UserSig"]  # generated for the robot user, sent only to TRTC
    everything = logs() + repr(xcoms)
    metadata_db = (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").read_bytes()
    for value in (secret, user_sig):
        assert value not in everything
        assert value.encode() not in metadata_db  # trigger kwargs, XCom, rendered fields, logs tables


TEARDOWN_DAG = """
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_avatar.operators.trtc import TrtcStartStreamIngestOperator, TrtcStopStreamIngestOperator

with DAG("trtc_teardown_check", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    start = TrtcStartStreamIngestOperator(
        task_id="start_ingest", room_id="room-1", stream_url="https://media.test/live.flv?sim_seconds=3600"
    )

    @task
    def announce(task_id: str) -> None:
        raise RuntimeError("the step between start and stop failed")

    stop = TrtcStopStreamIngestOperator(task_id="stop_ingest", remote_task_id=start.output)
    start >> announce(start.output) >> stop.as_teardown(setups=start)
"""


def test_trtc_teardown_stops_the_ingest_when_a_step_fails(
    trtc_conn: Simulator,
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "trtc_teardown_check.py").write_text(TEARDOWN_DAG)
    # dag.test() re-parses the dags-folder bundle, which is settings.DAGS_FOLDER: point it at this DAG.
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))
    dag = DagBag(dag_folder=str(tmp_path)).get_dag("trtc_teardown_check")
    run = dag.test()
    assert _trtc_states(run) == {"start_ingest": "success", "announce": "failed", "stop_ingest": "success"}, logs()[
        -3000:
    ]
    assert run.state == "failed"
    trtc = trtc_conn.services["trtc"]
    assert trtc.summary()["live"] == 0 and trtc.stop_calls == 1
    assert SENTINELS["trtc"] not in logs()
