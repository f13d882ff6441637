"""Start a ZEGOCLOUD digital-human stream, wait until it is live, make it speak, always stop it.

The stop task is a teardown: it runs even when the drive fails, so a failed run never leaves a
paid stream running. The stream is also created with a bounded TTL and idle time as a backstop.

Connection ``zego_default`` (type ``zego``): login = AppId, password = ServerSecret; host = API
base URL (optional, defaults to https://aigc-digitalhuman-api.zegotech.cn).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.zego import (
    ZegoCreateDigitalHumanStreamOperator,
    ZegoDriveByTextOperator,
    ZegoStopDigitalHumanStreamOperator,
)
from airflow_provider_avatar.sensors.zego import ZegoDigitalHumanStreamSensor

# The demo sets a shorter interval for its simulator.
POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "5"))

with DAG(
    dag_id="example_zego_digital_human",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "zego", "stream"],
    params={
        "digital_human_id": Param("dh-demo", type="string", minLength=1),
        "room_id": Param("avatar-demo-room", type="string", minLength=1, maxLength=128),
        "timbre_id": Param("timbre-demo", type="string", minLength=1),
        "text": Param("Hello! This stream was started by Airflow.", type="string", minLength=1, maxLength=1800),
    },
) as dag:
    # [START howto_zego_stream_with_teardown]
    create = ZegoCreateDigitalHumanStreamOperator(
        task_id="create_stream",
        digital_human_id="{{ params.digital_human_id }}",
        room_id="{{ params.room_id }}",
        ttl=1800,
        max_idle_time=300,
    )
    wait_live = ZegoDigitalHumanStreamSensor(
        task_id="wait_until_live",
        remote_task_id=create.output,
        poll_interval=POLL_INTERVAL,
        timeout=10 * 60,
        deferrable=True,
    )
    speak = ZegoDriveByTextOperator(
        task_id="speak",
        remote_task_id=create.output,
        text="{{ params.text }}",
        timbre_id="{{ params.timbre_id }}",
    )
    stop = ZegoStopDigitalHumanStreamOperator(task_id="stop_stream", remote_task_id=create.output)
    create >> wait_live >> speak >> stop.as_teardown(setups=create)
    # [END howto_zego_stream_with_teardown]
