"""The soak benchmark's DAG: N Scenext creates (dynamic task mapping), then N deferrable waits mapped over the ids.

Copied into a temporary DAGs folder by ``benchmarks/soak.py``, which sets ``AVATAR_SOAK_N`` and
``AVATAR_SOAK_POLL_INTERVAL`` for every Airflow component. Each create's question names its map
index (``soak item <i>``), so the simulator's create log can be counted per mapped index.
Retries are allowed (and reported): a fault that leaks into Airflow shows as a retry, not as a lost run.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor

DAG_ID = "avatar_soak"
N = int(os.environ.get("AVATAR_SOAK_N", "10"))
POLL_INTERVAL = float(os.environ.get("AVATAR_SOAK_POLL_INTERVAL", "2"))

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["benchmark"],
) as dag:
    create = ScenextCreateVideoOperator.partial(task_id="create").expand(question=[f"soak item {i}" for i in range(N)])
    ScenextVideoSensor.partial(task_id="wait", poll_interval=POLL_INTERVAL, timeout=60 * 60, deferrable=True).expand(
        remote_task_id=create.output
    )
