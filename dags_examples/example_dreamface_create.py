"""Start a DreamFace avatar task through your new-api gateway's submit route, wait, download.

For gateways that expose a submit route: DreamFace gateways publish none, so the route (connection
extra ``create_path``) and the request body are yours; the task id is read from the answer shapes
new-api gateways use. Waiting and downloading are the verified part (see example_dreamface_avatar).

Connection ``dreamface_default`` (type ``dreamface``): password = API key; host = the gateway's base
URL (required); extra ``{"create_path": "<your gateway's submit route>"}``. For the local simulator
also ``{"allow_private_hosts": true}`` so the video may be fetched from 127.0.0.1.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.operators.dreamface import DreamFaceCreateAvatarOperator
from airflow_provider_avatar.sensors.dreamface import DreamFaceAvatarSensor

POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "15"))

with DAG(
    dag_id="example_dreamface_create",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "dreamface"],
    params={
        "image_url": Param("https://media.example.com/face.png", type="string", minLength=1),
        "audio_url": Param("https://media.example.com/hello.mp3", type="string", minLength=1),
        "output_dir": Param(os.environ.get("AVATAR_EXAMPLE_OUTPUT_DIR", "/tmp/avatar-videos"), type="string"),
    },
) as dag:
    # [START howto_dreamface_create_wait_download]
    create = DreamFaceCreateAvatarOperator(
        task_id="create_avatar",
        # Sent as given: use the fields your gateway's submit route expects.
        body={"image_url": "{{ params.image_url }}", "audio_url": "{{ params.audio_url }}"},
    )
    wait = DreamFaceAvatarSensor(
        task_id="wait_for_avatar",
        remote_task_id=create.output,
        poll_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )
    download = AvatarVideoDownloadOperator(
        task_id="download_video",
        source=wait.output,
        destination="{{ params.output_dir }}/dreamface-{{ ti.xcom_pull(task_ids='create_avatar') }}-"
        "{{ run_id | replace(':', '') | replace('+', '') }}.mp4",
    )
    # [END howto_dreamface_create_wait_download]
    create >> wait >> download
