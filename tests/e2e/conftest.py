"""Fixtures of the real-Airflow tests; the fault scenarios (marker ``e2e_faults``) run only when asked for."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest

from airflow_provider_avatar.services import SERVICES
from airflow_provider_avatar.testing.simulator import Simulator

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Remote tasks finish only when a test releases them (see harness.release_after_defer_exit), so every
#: wait is sure to defer first.
SIM_TASK_SECONDS = 3600.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the slow fault scenarios unless the marker expression names them (``make e2e-faults``)."""
    if "e2e_faults" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("e2e_faults")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("e2e_faults")]


@pytest.fixture
def api_key() -> str:
    return f"sk-e2e-sentinel-{secrets.token_hex(8)}"


@pytest.fixture
def e2e_simulator(api_key: str) -> Iterator[Simulator]:
    """The simulator in a thread of this process (so its request log can be inspected)."""
    sim = Simulator(api_keys=dict.fromkeys(SERVICES, api_key), task_duration=SIM_TASK_SECONDS).start()
    # The ingest goes live only when the test says so (see release_after_defer_exit).
    sim.services["trtc"].start_delay = 3600.0  # type: ignore[attr-defined]
    try:
        yield sim
    finally:
        sim.stop()
