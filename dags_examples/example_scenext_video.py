"""Generate an explainer video with Scenext, wait for it without holding a worker slot, download it.

Connection ``scenext_default`` (type ``scenext``): password = API key; host = API base URL
(optional, defaults to https://api.scenext.cn/api). For the local simulator also set the extra
``{"allow_private_hosts": true}`` so the video may be fetched from 127.0.0.1.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.operators.scenext import ScenextCreateVideoOperator
from airflow_provider_avatar.sensors.scenext import ScenextVideoSensor

# Scenext advises polling every 30 s; the demo sets a shorter interval for its simulator.
POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="example_scenext_video",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "scenext"],
    params={
        "question": Param("Why is the sky blue?", type="string", minLength=1),
        "quality": Param("m", enum=["l", "m", "h"]),
        "output_dir": Param(os.environ.get("AVATAR_EXAMPLE_OUTPUT_DIR", "/tmp/avatar-videos"), type="string"),
    },
) as dag:
    # [START howto_scenext_create_wait_download]
    create = ScenextCreateVideoOperator(
        task_id="create_video",
        question="{{ params.question }}",
        quality="{{ params.quality }}",
    )
    wait = ScenextVideoSensor(
        task_id="wait_for_video",
        remote_task_id=create.output,
        poll_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )
    download = AvatarVideoDownloadOperator(
        task_id="download_video",
        source=wait.output,
        destination="{{ params.output_dir }}/scenext-{{ ti.xcom_pull(task_ids='create_video') }}-"
        "{{ run_id | replace(':', '') | replace('+', '') }}.mp4",
    )
    # [END howto_scenext_create_wait_download]
    create >> wait >> download
