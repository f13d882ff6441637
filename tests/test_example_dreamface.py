"""Both DreamFace example DAGs run green with ``dag.test()`` against the simulated gateway."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_avatar.testing.sim_dreamface import DEMO_TASK_ID, DreamFaceSim
from airflow_provider_avatar.testing.simulator import Simulator, sample_video
from tests.conftest import REPO, SENTINELS

KEY = SENTINELS["dreamface"]


def _run(sim: Simulator, monkeypatch: pytest.MonkeyPatch, dag_id: str, **conf: str) -> tuple[Any, dict[str, Any]]:
    from airflow.dag_processing.dagbag import DagBag

    for name, value in sim.connection_env("dreamface", read_timeout=2).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AVATAR_EXAMPLE_POLL_INTERVAL", "0.3")
    sim.services["dreamface"].default_duration = 1.0
    dag = DagBag(dag_folder=str(REPO / "dags_examples")).get_dag(dag_id)
    run = dag.test(run_conf=conf)
    xcoms = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    return run, xcoms


def _check_video_and_secrets(out: Path, xcoms: dict[str, Any], logs: Callable[[], str]) -> None:
    (video,) = out.glob("dreamface-*.mp4")
    assert hashlib.sha256(video.read_bytes()).digest() == hashlib.sha256(sample_video()).digest()
    assert xcoms["download_video"]["path"] == str(video)
    everything = logs() + repr(xcoms)
    assert KEY not in everything
    assert "Signature=" not in everything  # signed URLs are logged and stored without their query
    metadata_db = (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").read_bytes()
    assert KEY.encode() not in metadata_db  # trigger kwargs, XCom, rendered fields, logs tables


def test_wait_and_download_a_task_given_as_a_param(
    sim: Simulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    gw: DreamFaceSim = sim.services["dreamface"]  # type: ignore[assignment]
    task_id = gw.add_task(duration=1.0, phases=[("NOT_START", 0.3), ("QUEUED", 0.3)])
    run, xcoms = _run(sim, monkeypatch, "example_dreamface_avatar", remote_task_id=task_id, output_dir=str(tmp_path))
    assert run.state == "success", logs()[-3000:]
    assert xcoms["wait_for_avatar"]["remote_task_id"] == task_id
    assert xcoms["wait_for_avatar"]["result"]["video_field"] == "no_wm_work_video_path"
    assert not [r for r in sim.requests("dreamface") if r.method == "POST"]  # nothing created
    _check_video_and_secrets(tmp_path, xcoms, logs)


def test_the_param_example_runs_without_input_on_the_simulator(
    sim: Simulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    """What ``make demo`` does: no conf but the output folder; the simulator's demo task is waited for."""
    run, xcoms = _run(sim, monkeypatch, "example_dreamface_avatar", output_dir=str(tmp_path))
    assert run.state == "success", logs()[-3000:]
    assert xcoms["wait_for_avatar"]["remote_task_id"] == DEMO_TASK_ID
    _check_video_and_secrets(tmp_path, xcoms, logs)


def test_create_wait_download(
    sim: Simulator, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    gw: DreamFaceSim = sim.services["dreamface"]  # type: ignore[assignment]
    run, xcoms = _run(
        sim, monkeypatch, "example_dreamface_create", image_url="https://media.test/me.png", output_dir=str(tmp_path)
    )
    assert run.state == "success", logs()[-3000:]
    assert gw.created_bodies == [
        {"image_url": "https://media.test/me.png", "audio_url": "https://media.example.com/hello.mp3"}
    ]
    assert xcoms["create_avatar"] in gw.tasks
    assert [r.method for r in sim.requests("dreamface")].count("POST") == 1
    _check_video_and_secrets(tmp_path, xcoms, logs)
