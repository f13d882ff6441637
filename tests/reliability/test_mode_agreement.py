"""Poke, reschedule and deferrable give the same task state and XCom for every history of every
service, with and without 30% faults on the status reads (docs/architecture.md, "Reliability checks")."""

from __future__ import annotations

import json

import pytest

from airflow_provider_avatar.testing.simulator import FAULT_KINDS, HISTORIES, Faults
from tests.reliability.conftest import MODES, Svc, comparable, run_mode

#: Reschedule mode starts every poke afresh: it cannot know that a gone task was seen by an earlier poke.
RESCHEDULE_FORGETS = {"gone_after_seen"}


@pytest.mark.check(0)
@pytest.mark.parametrize("faulty", [False, True], ids=["clean", "faults30"])
@pytest.mark.parametrize("history", HISTORIES)
def test_modes_agree(svc: Svc, history: str, faulty: bool) -> None:
    svc.skip_unless(history)
    if faulty:
        kinds = tuple(k for k in FAULT_KINDS if k != "timeout")  # read timeouts: check 1 (real seconds)
        svc.simulator.set_faults(
            svc.key, Faults(error_rate=0.3, kinds=kinds, retry_after=0.1, status_reads_only=True, seed=3)
        )
    # A TRTC start may stay NotExist longer than the wait: a long wait's grace outlasts its timeout.
    grace = 60 if history == "long_running" else 2
    # A task that vanishes must be seen first by every mode, even one whose first read is retried
    # (the sync transport backs off up to a few seconds under faults).
    duration = 4.0 if history == "gone_after_seen" else 1.0
    results = {}
    for mode in MODES:
        task_id = svc.script(history, duration=duration)
        writes = len(svc.writes())
        kind, value = run_mode(mode, lambda task_id=task_id, **kw: svc.sensor(task_id, not_found_grace=grace, **kw))
        assert len(svc.writes()) == writes, f"{mode} wrote to the service while waiting"
        results[mode] = (kind, comparable(value, task_id))
    if history in RESCHEDULE_FORGETS:
        kind, value = results.pop("reschedule")  # it reads as a task never found
        never = svc.expected("never_exists")
        assert (kind, value[1] if never[1] == "failed" else value[0]) == never, value
    for mode, result in results.items():
        assert result == results["poke"], (mode, result, results["poke"])
    kind, value = results["poke"]
    expected = svc.expected(history)
    if kind == "ok":
        assert (kind, value["state"]) == expected
        assert "Signature=" not in json.dumps(value)
    elif value == "timeout":
        assert (kind, value) == expected
    else:
        assert (kind, value[1] if expected[1] == "failed" else value[0]) == expected, value
        if history == "no_artifact":
            assert value[2] == "no_artifact"
