"""Generate a video from text with MiniMax Hailuo, wait for it without holding a worker slot, land the MP4.

Connection ``minimax_default`` (type ``minimax``): password = API key; host = API base URL (optional:
``https://api.gpt.ge`` for the gateway, ``https://api.minimax.io`` with the extra ``{"flavor": "direct"}``
for MiniMax itself). The finished task gives a ``file_id``; the download step asks files/retrieve for a
fresh URL just before it fetches. For the local simulator also set ``{"allow_private_hosts": true}``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.operators.minimax import MiniMaxCreateVideoOperator
from airflow_provider_avatar.sensors.minimax import MiniMaxVideoSensor

# MiniMax advises polling about every 10 s; the demo sets a shorter interval for its simulator.
POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "10"))

with DAG(
    dag_id="example_minimax_video",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "minimax"],
    params={
        "prompt": Param("A red fox runs through fresh snow at dawn. [Tracking shot]", type="string", minLength=1),
        "model": Param("MiniMax-Hailuo-2.3", type="string"),
        "duration": Param(6, enum=[6, 10]),
        "output_dir": Param(os.environ.get("AVATAR_EXAMPLE_OUTPUT_DIR", "/tmp/avatar-videos"), type="string"),
    },
) as dag:
    # [START howto_minimax_create_wait_download]
    create = MiniMaxCreateVideoOperator(
        task_id="create_video",
        prompt="{{ params.prompt }}",
        model="{{ params.model }}",
        duration="{{ params.duration }}",
        resolution="768P",
    )
    wait = MiniMaxVideoSensor(
        task_id="wait_for_video",
        remote_task_id=create.output,
        poll_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )
    download = AvatarVideoDownloadOperator(
        task_id="download_video",
        source=wait.output,
        destination="{{ params.output_dir }}/minimax-{{ ti.xcom_pull(task_ids='create_video') }}-"
        "{{ run_id | replace(':', '') | replace('+', '') }}.mp4",
    )
    # [END howto_minimax_create_wait_download]
    create >> wait >> download
