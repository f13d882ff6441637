"""The simulator's fault scope (``status_reads_only`` faults what waits send and never a write) and held creates."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from aiohttp.test_utils import make_mocked_request

from airflow_provider_avatar.services import SERVICES
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


def test_a_held_create_lands_before_its_caller_hears_of_it(sim: Simulator) -> None:
    """``hold_create_answers``: the task exists (billed) while the create's answer is still held, so a
    caller killed or timed out meanwhile leaves a task it never learnt the id of."""
    sim.hold_create_answers("scenext", 60.0)
    auth = {"Authorization": f"Bearer {SENTINEL_KEY}"}
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sim.url('scenext')}/gen_video", json={"question": "q"}, headers=auth, timeout=(5, 1))
    (task_id,) = sim.services["scenext"].tasks  # type: ignore[attr-defined]
    polled = requests.get(f"{sim.url('scenext')}/get_status/{task_id}", headers=auth, timeout=5)
    assert polled.status_code == 200, "status reads are not held"
    sim.hold_create_answers("scenext", None)
    created = requests.post(f"{sim.url('scenext')}/gen_video", json={"question": "q"}, headers=auth, timeout=(5, 30))
    assert created.status_code == 200, "creates are answered at once again"


#: (service, method, path, headers): one create request of each service.
CREATES = [
    ("scenext", "POST", "/scenext/api/gen_video", {}),
    ("minimax", "POST", "/minimax/v1/video_generation", {}),
    ("minimax", "POST", "/minimax/task/minimax/v1/video_generation", {}),
    ("dreamface", "POST", "/dreamface/avatar/create", {}),
    ("trtc", "POST", "/", {"X-TC-Action": "StartStreamIngest"}),
    ("zego", "POST", "/zego/?Action=CreateDigitalHumanStreamTask", {}),
]


@pytest.mark.parametrize(("service", "method", "path", "headers"), CREATES)
def test_every_service_knows_its_create(sim: Simulator, service: str, method: str, path: str, headers: Any) -> None:
    service_sim = sim.services[service]
    assert service_sim.is_create(make_mocked_request(method, path, headers=headers))
    assert not service_sim.is_create(make_mocked_request("GET", path, headers={}))


def test_every_service_has_a_create_row() -> None:
    assert {row[0] for row in CREATES} == set(SERVICES)


def test_releasing_held_creates_answers_them(sim: Simulator) -> None:
    sim.hold_create_answers("scenext", 600.0)
    auth = {"Authorization": f"Bearer {SENTINEL_KEY}"}
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            requests.post, f"{sim.url('scenext')}/gen_video", json={"question": "q"}, headers=auth, timeout=(5, 120)
        )
        deadline = time.monotonic() + 60
        while not sim.services["scenext"].tasks and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        assert not answer.done(), "the create was answered while held"
        sim.hold_create_answers("scenext", None)
        assert answer.result(timeout=120).status_code == 200
