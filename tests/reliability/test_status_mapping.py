"""Check 8: the status mapping is total. Every status of the service's documented timelines maps;
an unknown status or an empty/malformed answer is warned about and waited through under the
deadline; success without a result fails clearly; "not found" right after create is retried."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from airflow_provider_avatar.testing.simulator import BODY_FAULT_KINDS, Faults
from tests.reliability.conftest import Svc, collect_events

pytestmark = pytest.mark.check(8)
UNMAPPED = "has unmapped status"


@pytest.mark.parametrize("history", ["succeeds", "fails", "no_artifact"])
async def test_every_status_of_a_documented_timeline_maps(svc: Svc, history: str, logs: Callable[[], str]) -> None:
    (event,) = await collect_events(svc.trigger(svc.script(history, duration=2.0), poll_interval=0.1))
    assert event["status"] == ("success" if history == "succeeds" else "failed")
    assert UNMAPPED not in logs()


async def test_an_unknown_status_is_warned_once_and_waited_through(svc: Svc, logs: Callable[[], str]) -> None:
    (event,) = await collect_events(svc.trigger(svc.script("unknown_then_succeeds", duration=2.0)))
    assert event["status"] == "success"
    assert logs().count(UNMAPPED) == 1


async def test_an_empty_or_malformed_answer_keeps_the_wait_polling(svc: Svc, logs: Callable[[], str]) -> None:
    task_id = svc.script("succeeds", duration=0.0)
    svc.simulator.set_faults(svc.key, Faults(error_rate=1.0, kinds=BODY_FAULT_KINDS, status_reads_only=True, seed=2))
    wait = asyncio.ensure_future(collect_events(svc.trigger(task_id)))
    await svc.clock.asleep(1.0)
    svc.simulator.set_faults(svc.key, None)
    (event,) = await wait
    assert event["status"] == "success"
    assert {r.fault for r in svc.requests() if r.fault} == set(BODY_FAULT_KINDS)
    assert "retrying in" in logs()  # each bad answer was warned about


async def test_an_endless_bad_answer_ends_at_the_deadline_not_silently(svc: Svc) -> None:
    task_id = svc.script("succeeds", duration=0.0)
    svc.simulator.set_faults(svc.key, Faults(error_rate=1.0, kinds=BODY_FAULT_KINDS, status_reads_only=True))
    (event,) = await collect_events(svc.trigger(task_id, timeout=3.0))
    assert event["status"] in ("timeout", "error"), event
    assert svc.clock.elapsed <= 3.0 + 0.2 * 4 + 1e-6


async def test_success_without_a_result_fails_clearly(svc: Svc) -> None:
    (event,) = await collect_events(svc.trigger(svc.script("no_artifact")))
    assert (event["status"], event["task_status"]["error_code"]) == ("failed", "no_artifact")
    # The message says the service reported success, and that the result is missing.
    assert event["task_status"]["raw_status"].lower() in event["message"].lower(), event["message"]


async def test_not_found_right_after_create_is_polled_at_the_normal_pace(svc: Svc) -> None:
    task_id = svc.script("not_listed_then_succeeds", duration=2.0)
    (event,) = await collect_events(
        svc.trigger(task_id, poll_interval=0.25, not_found_grace_until=svc.clock.time() + 5)
    )
    assert event["status"] == "success"
    times = [r.at for r in svc.requests()]
    assert {round(b - a, 3) for a, b in itertools.pairwise(times)} == {0.25}  # no error backoff
