"""The example DAGs import cleanly and run green with ``dag.test()`` against the simulator."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_avatar.testing.simulator import Simulator, sample_video
from tests.conftest import REPO, SENTINEL_KEY

DAGS = REPO / "dags_examples"


def _dagbag() -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_example_dags_import_without_errors() -> None:
    bag = _dagbag()
    assert bag.import_errors == {}  # type: ignore[attr-defined]
    assert "example_scenext_video" in bag.dag_ids  # type: ignore[attr-defined]
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
