"""The MiniMax example DAG runs green with ``dag.test()`` against the simulator, in both flavors; an
expired download URL is refreshed through files/retrieve once, and a second expiry fails clearly."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_avatar.protocols.minimax import DIRECT, GATEWAY
from airflow_provider_avatar.testing.sim_minimax import MiniMaxSim
from airflow_provider_avatar.testing.simulator import Simulator, sample_video
from tests.conftest import REPO, SENTINELS

KEY = SENTINELS["minimax"]


def _run(
    use_connection: Callable[..., Simulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flavor: str,
    setup: Callable[[MiniMaxSim], None] = lambda sim: None,
) -> tuple[Any, MiniMaxSim, dict[str, Any]]:
    from airflow.dag_processing.dagbag import DagBag

    sim = use_connection("minimax", flavor=flavor).services["minimax"]
    assert isinstance(sim, MiniMaxSim)
    sim.default_duration = 1.5
    setup(sim)
    monkeypatch.setenv("AVATAR_EXAMPLE_POLL_INTERVAL", "0.5")
    dag = DagBag(dag_folder=str(REPO / "dags_examples")).get_dag("example_minimax_video")
    run = dag.test(run_conf={"output_dir": str(tmp_path), "prompt": "A fox in the snow", "duration": 10})
    xcoms = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    return run, sim, xcoms


def _no_secret(everything: str) -> None:
    assert KEY not in everything
    assert "Signature=" not in everything  # signed URLs are logged and stored without their query
    metadata_db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    assert KEY.encode() not in metadata_db.read_bytes()  # trigger kwargs, XCom, rendered fields, logs


@pytest.mark.parametrize("flavor", [GATEWAY, DIRECT])
def test_minimax_example_lands_the_mp4(
    use_connection: Callable[..., Simulator],
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
    flavor: str,
) -> None:
    run, sim, xcoms = _run(use_connection, monkeypatch, tmp_path, flavor)
    assert run.state == "success", logs()[-3000:]
    (video,) = tmp_path.glob("minimax-*.mp4")
    assert hashlib.sha256(video.read_bytes()).digest() == hashlib.sha256(sample_video()).digest()
    (body,) = sim.created_bodies
    assert body == {"model": "MiniMax-Hailuo-2.3", "prompt": "A fox in the snow", "duration": 10, "resolution": "768P"}
    paths = [r.path for r in sim.state.requests if r.service == "minimax"]
    prefix = "/minimax/task/minimax/v1" if flavor == GATEWAY else "/minimax/v1"
    assert sum(p.startswith(f"{prefix}/video_generation") for p in paths) == 1
    assert sim.retrieves == 1 and any(p.startswith(f"{prefix}/files/retrieve") for p in paths)
    task_id = xcoms["create_video"]
    status = xcoms["wait_for_video"]
    assert status["state"] == "SUCCEEDED" and status["video_url"] is None
    assert status["result"] == {"file_id": f"file-{task_id}", "width": 1366, "height": 768}
    assert xcoms["download_video"]["path"] == str(video)
    _no_secret(logs() + repr(xcoms))


def test_an_expired_url_is_refreshed_once(
    use_connection: Callable[..., Simulator],
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    run, sim, _ = _run(use_connection, monkeypatch, tmp_path, GATEWAY, lambda s: setattr(s, "expired_urls", 1))
    assert run.state == "success", logs()[-3000:]
    assert sim.retrieves == 2  # the expired URL, then a fresh one
    (video,) = tmp_path.glob("minimax-*.mp4")
    assert video.read_bytes() == sample_video()


def test_a_second_expiry_fails_clearly(
    use_connection: Callable[..., Simulator],
    airflow_db: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    run, sim, _ = _run(use_connection, monkeypatch, tmp_path, DIRECT, lambda s: setattr(s, "expired_urls", 5))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"create_video": "success", "wait_for_video": "success", "download_video": "failed"}
    assert sim.retrieves == 2  # refreshed once, never in a loop
    assert list(tmp_path.glob("minimax-*")) == []  # nothing published
    text = logs()
    assert "AvatarDownloadError" in text and "expired" in text.lower()
    _no_secret(text)
