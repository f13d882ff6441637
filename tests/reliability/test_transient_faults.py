"""Check 1: transient faults never end a wait, and a create is never sent twice."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_avatar.exceptions import AvatarError, AvatarSubmitUnknownError
from airflow_provider_avatar.testing.simulator import FAULT_KINDS, Faults
from tests.reliability.conftest import Svc, collect_events

pytestmark = pytest.mark.check(1)
EVENT = {"succeeds": "success", "fails": "failed", "no_artifact": "failed"}


async def test_30pct_faults_on_status_reads_never_end_a_wait(svc: Svc) -> None:
    """5xx, 429, resets, read timeouts and HTML pages on 30% of polls: every wait ends right, one event each."""
    svc.connect(read_timeout=0.3)  # a read timeout costs 0.3 real seconds, not the default 2
    histories = [h for h in EVENT if h not in svc.sim.not_applicable] * 4
    ids = [svc.script(h, duration=1.5) for h in histories]
    svc.simulator.set_faults(
        svc.key, Faults(error_rate=0.3, retry_after=0.2, timeout_delay=0.5, status_reads_only=True, seed=7)
    )
    events = await asyncio.gather(
        *(collect_events(svc.trigger(i, not_found_grace_until=svc.clock.time() + 10)) for i in ids)
    )
    assert all(len(e) == 1 for e in events)
    assert [e[0]["status"] for e in events] == [EVENT[h] for h in histories], [e[0] for e in events]
    fired = {r.fault for r in svc.requests() if r.fault}
    assert len(fired) >= 4, f"the fault injector should have fired several kinds, fired {fired}"
    assert svc.writes() == []


@pytest.mark.parametrize("fault", [k for k in FAULT_KINDS if k != "429"])
def test_a_create_whose_answer_is_lost_is_not_sent_again(svc: Svc, fault: str) -> None:
    """The create may have landed: it fails with AvatarSubmitUnknownError (no Airflow retry) after one send.
    A service with an idempotency key (ZEGO's StreamId) may look the task up and send once more."""
    svc.connect(read_timeout=0.3)
    svc.simulator.set_faults(svc.key, Faults(error_rate=1.0, kinds=(fault,), timeout_delay=0.5))
    method, kwargs = svc.sim.create_call()
    sent = svc.record_sends()
    with pytest.raises(AvatarError) as info:
        getattr(svc.hook(), method)(**kwargs)
    allowed = 2 if svc.sim.idempotent_create else 1
    creates_sent = [spec.action for spec in sent if not spec.idempotent]
    assert 1 <= len(creates_sent) <= allowed, creates_sent
    svc.simulator.settle()  # a "timeout" fault is still being answered
    # The service side can only have fewer (a create whose caller hung up may never reach a handler).
    assert len(svc.writes()) <= len(creates_sent), svc.writes()
    if not svc.sim.idempotent_create:
        assert isinstance(info.value, AvatarSubmitUnknownError), info.value
    assert svc.secret not in str(info.value) and svc.secret not in json.dumps(info.value.to_dict())
