"""Relay a video into a Tencent Cloud TRTC room, wait until it is live, wait until it has played, always stop it.

The stop task is a teardown: it runs even when a wait fails or times out, so a failed run never
leaves a billed ingest running. The ingest is also bounded by TRTC itself: ``idle_timeout`` (and
``max_duration`` for a looping source) end it if nobody does.

Connection ``trtc_default`` (type ``trtc``): login = SecretId, password = SecretKey (a Tencent Cloud
API key, CAM console); extra ``region`` (e.g. ``ap-singapore``), ``sdk_app_id`` and
``sdk_secret_key`` (the TRTC application's SDKAppID and SDK secret key, TRTC console), from which
the robot user's UserSig is generated.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_avatar.operators.trtc import TrtcStartStreamIngestOperator, TrtcStopStreamIngestOperator
from airflow_provider_avatar.sensors.trtc import TrtcStreamIngestSensor

# The demo sets a shorter interval for its simulator.
POLL_INTERVAL = float(os.environ.get("AVATAR_EXAMPLE_POLL_INTERVAL", "5"))

with DAG(
    dag_id="example_trtc_stream_ingest",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "avatar", "trtc", "stream"],
    params={
        "room_id": Param("avatar-demo-room", type="string", minLength=1),
        "stream_url": Param("https://example.com/videos/intro.mp4", type="string", pattern="^(https?|rtmps?)://"),
    },
) as dag:
    # [START howto_trtc_ingest_with_teardown]
    start = TrtcStartStreamIngestOperator(
        task_id="start_ingest",
        room_id="{{ params.room_id }}",
        stream_url="{{ params.stream_url }}",
        repeat_num=1,  # play the file once; -1 loops until max_duration minutes or a stop
        idle_timeout=60,
    )
    wait_live = TrtcStreamIngestSensor(
        task_id="wait_until_live",
        remote_task_id=start.output,
        poll_interval=POLL_INTERVAL,
        timeout=5 * 60,
        deferrable=True,
    )
    wait_played = TrtcStreamIngestSensor(
        task_id="wait_until_played",
        remote_task_id=start.output,
        target_states={"STOPPED"},
        stop_requested=True,  # wait_until_live saw it live: "NotExist" now means it has ended
        poll_interval=POLL_INTERVAL,
        timeout=30 * 60,
        deferrable=True,
    )
    stop = TrtcStopStreamIngestOperator(task_id="stop_ingest", remote_task_id=start.output)
    start >> wait_live >> wait_played >> stop.as_teardown(setups=start)
    # [END howto_trtc_ingest_with_teardown]
