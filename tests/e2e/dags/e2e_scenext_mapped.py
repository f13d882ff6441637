"""Several Scenext videos in one run: a mapped create, then one deferred wait per video (e2e fault scenarios)."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor

VIDEOS = int(os.environ.get("AVATAR_E2E_VIDEOS", "4"))

with DAG(dag_id="e2e_scenext_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    create = ScenextCreateVideoOperator.partial(task_id="create_video").expand(
        question=[f"Question {i}?" for i in range(VIDEOS)]
    )
    ScenextVideoSensor.partial(task_id="wait_for_video", poll_interval=1.0, timeout=60 * 60, deferrable=True).expand(
        remote_task_id=create.output
    )
