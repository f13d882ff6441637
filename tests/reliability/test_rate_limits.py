"""Check 3: rate limits are respected. A 429's Retry-After holds the next call back (virtual time);
many waits sharing one connection stay under the service's documented QPS or the connection's max_qps."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from airflow_provider_avatar.exceptions import AvatarRateLimitedError
from airflow_provider_avatar.services import hook_class
from airflow_provider_avatar.testing.simulator import Faults
from tests.reliability.conftest import Svc, collect_events

pytestmark = pytest.mark.check(3)
#: The pace a connection gets when its service publishes no rate (set through the connection's max_qps).
FALLBACK_MAX_QPS = 10.0


async def test_retry_after_holds_every_poll_back(svc: Svc) -> None:
    svc.skip_unless("retry_after")
    task_id = svc.script("succeeds", duration=0.0)
    svc.simulator.set_faults(svc.key, Faults(error_rate=1.0, kinds=("429",), retry_after=0.6, status_reads_only=True))
    started = svc.clock.time()
    wait = asyncio.ensure_future(collect_events(svc.trigger(task_id, poll_interval=0.05)))
    await svc.clock.asleep(1.5)
    svc.simulator.set_faults(svc.key, None)
    (event,) = await wait
    assert event["status"] == "success"
    times = [r.at - started for r in svc.requests()]
    assert times == pytest.approx([0.0, 0.6, 1.2, 1.8], abs=1e-5)  # every call waited out the 0.6 s
    assert [r.status for r in svc.requests()] == [429, 429, 429, 200]


def test_retry_after_holds_a_worker_call_back(svc: Svc) -> None:
    svc.skip_unless("retry_after")
    svc.connect(max_attempts=3)
    svc.simulator.set_faults(svc.key, Faults(error_rate=1.0, kinds=("429",), retry_after=0.6))
    with pytest.raises(AvatarRateLimitedError):
        svc.hook().get_status(svc.script("long_running"))
    times = [r.at for r in svc.requests()]
    assert len(times) == 3
    assert all(gap >= 0.6 - 1e-6 for gap in (b - a for a, b in itertools.pairwise(times)))


async def test_200_waits_on_one_connection_stay_under_the_rate(svc: Svc) -> None:
    """200 waits want 400 polls/s; the connection paces them under the service's QPS and the
    simulator (which enforces ZEGO's and TRTC's limits) refuses none."""
    limit = svc.row.default_max_qps
    if limit is None:
        limit = FALLBACK_MAX_QPS
        svc.connect(max_qps=limit)
    ids = [svc.script("long_running") for _ in range(200)]
    grace = svc.clock.time() + 3600
    started = svc.clock.time()
    waits = [
        asyncio.ensure_future(collect_events(svc.trigger(i, poll_interval=0.5, not_found_grace_until=grace)))
        for i in ids
    ]
    await svc.clock.asleep(4.05)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    times = [r.at - started for r in svc.requests()]
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= limit, busiest
    if hook_class(svc.key).protocol.build_list_request() is None:
        assert len(times) >= 4 * limit * 0.8  # paced, not starved
    else:  # the waits share one list call per interval instead (tests/test_poller.py)
        assert len(times) >= 8
    assert all(r.status == 200 for r in svc.requests())
