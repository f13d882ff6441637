"""The simulator's fault scope: ``status_reads_only`` faults what waits send and never a write."""

from __future__ import annotations

import requests

from airflow_provider_avatar.testing.simulator import Faults, Simulator
from tests.conftest import SENTINEL_KEY


def test_status_reads_only_faults_the_polls_and_never_the_create(sim: Simulator) -> None:
    sim.set_faults("scenext", Faults(error_rate=1.0, kinds=("503",), status_reads_only=True))
    auth = {"Authorization": f"Bearer {SENTINEL_KEY}"}
    created = requests.post(f"{sim.url('scenext')}/gen_video", json={"question": "q"}, headers=auth, timeout=5)
    assert created.status_code == 200
    task_id = created.json()["data"]["task_id"]
    polled = requests.get(f"{sim.url('scenext')}/get_status/{task_id}", headers=auth, timeout=5)
    assert polled.status_code == 503
    assert [r.fault for r in sim.requests("scenext")] == [None, "503"]
