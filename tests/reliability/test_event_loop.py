"""Check 6: the event loop is never blocked. Blocking calls (time.sleep, requests, the sync
connection lookup, DNS) fail when made on the loop's thread; sync SDKs (TRTC) run in threads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import requests
from airflow.sdk.bases.hook import BaseHook

from airflow_provider_avatar.testing.simulator import Faults
from airflow_provider_avatar.triggers.poller import Poller
from tests.reliability.conftest import Svc, collect_events

pytestmark = pytest.mark.check(6)


async def test_no_blocking_call_on_the_loop_thread(svc: Svc, loop_thread_calls: list[str]) -> None:
    """Connection reads, faults (5xx, 429 with Retry-After, resets, HTML), not found, every outcome."""
    histories = [h for h in ("succeeds", "fails", "no_artifact", "never_exists") if h not in svc.sim.not_applicable]
    ids = [svc.script(h) for h in histories for _ in range(3)]
    kinds = ("503", "429", "reset", "html")
    svc.simulator.set_faults(
        svc.key, Faults(error_rate=0.3, kinds=kinds, retry_after=0.3, status_reads_only=True, seed=1)
    )
    events = await asyncio.gather(*(collect_events(svc.trigger(i)) for i in ids))
    assert all(e[0]["status"] in ("success", "failed", "error") for e in events)
    assert {e[0].get("reason") for e in events} >= {"target_state"}  # the waits did run to their ends
    assert loop_thread_calls == []


@pytest.mark.parametrize("inserted", ["time.sleep", "requests.Session.send", "BaseHook.get_connection"])
async def test_the_guard_catches_a_blocking_call(
    svc: Svc, monkeypatch: pytest.MonkeyPatch, loop_thread_calls: list[str], inserted: str
) -> None:
    """The check above is not vacuous: one blocking call inserted in the poll is caught."""
    real_read = Poller._read

    async def read_with_a_blocking_call(self: Poller, *args: Any) -> Any:
        if inserted == "time.sleep":
            time.sleep(0)
        elif inserted == "requests.Session.send":
            requests.Session().get(svc.simulator.url(svc.key))
        else:
            BaseHook.get_connection(svc.row.default_conn_id)
        return await real_read(self, *args)

    monkeypatch.setattr(Poller, "_read", read_with_a_blocking_call)
    (event,) = await collect_events(svc.trigger(svc.script("succeeds", duration=0.0)))
    assert event["status"] == "error"
    assert loop_thread_calls == [inserted]
