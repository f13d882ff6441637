"""Wait for a DreamFace avatar task started elsewhere (an app, a script) and download its video.

The verified path: it uses only the gateway's documented ``GET avatar/task/{id}``. Give the task id
as the ``remote_task_id`` param when triggering (its default is the one task the local simulator
always knows, so ``make demo`` runs it without input).

Connection ``dreamface_default`` (type ``dreamface``): password = your gateway's API key; host = your
new-api gateway's base URL (required). For the local simulator also set the extra
``{"allow_private_hosts": true}`` so the video may be fetched from 127.0.0.1.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.sensors.dreamface import DreamFaceAvatarSensor

POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "15"))
#: The local simulator's always-present task (see airflow_provider_avatar.testing.sim_dreamface).
SIMULATOR_TASK_ID = "demo-avatar-task"

with DAG(
    dag_id="example_dreamface_avatar",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "dreamface"],
    params={
        "remote_task_id": Param(SIMULATOR_TASK_ID, type="string", minLength=1, description="the gateway's task id"),
        "output_dir": Param(os.environ.get("AVATAR_EXAMPLE_OUTPUT_DIR", "/tmp/avatar-videos"), type="string"),
    },
) as dag:
    # [START howto_dreamface_wait_download]
    wait = DreamFaceAvatarSensor(
        task_id="wait_for_avatar",
        remote_task_id="{{ params.remote_task_id }}",
        poll_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )
    download = AvatarVideoDownloadOperator(
        task_id="download_video",
        source=wait.output,
        destination="{{ params.output_dir }}/dreamface-{{ params.remote_task_id }}-"
        "{{ run_id | replace(':', '') | replace('+', '') }}.mp4",
    )
    # [END howto_dreamface_wait_download]
    wait >> download
