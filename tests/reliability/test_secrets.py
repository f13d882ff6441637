"""Check 7: no secret leaves its box. With a sentinel for every service's secret (API key,
ServerSecret, SecretKey and SDK secret key), nothing a run produces holds it: task and trigger logs,
trigger kwargs, events, XCom, rendered templates, exception texts; signed URLs lose their query."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_avatar.exceptions import AvatarError
from tests.reliability.conftest import Svc, collect_events, rebuild, run_mode

pytestmark = pytest.mark.check(7)


def _deferred_run(svc: Svc, task_id: str) -> list[str]:
    """Everything a deferrable run leaves behind, as text: trigger kwargs, the event, XCom or the error."""
    sensor = svc.sensor(task_id, deferrable=True)
    seen: list[Any] = []
    try:
        try:
            seen.append(sensor.execute({}))
        except TaskDeferred as deferred:
            seen.append(deferred.trigger.serialize())
            (event,) = asyncio.run(collect_events(rebuild(deferred.trigger)))
            seen.append(event)
            seen.append(sensor.execute_complete({}, event=event))
    except AvatarError as exc:
        seen.extend([str(exc), repr(exc), exc.to_dict()])
    return [json.dumps(item, default=str) for item in seen]


@pytest.mark.parametrize("history", ["succeeds", "fails", "never_exists"])
def test_a_full_run_leaks_no_secret(svc: Svc, history: str, logs: Callable[[], str]) -> None:
    texts = _deferred_run(svc, svc.script(history))
    for mode in ("poke", "reschedule"):
        task_id = svc.script(history)
        texts.append(json.dumps(run_mode(mode, lambda task_id=task_id, **kw: svc.sensor(task_id, **kw)), default=str))
    everything = "\n".join([*texts, logs()])
    assert svc.secret not in everything
    assert "Signature=" not in everything  # signed URLs are shown without their query string


def test_a_rejected_key_leaks_no_secret(svc: Svc, logs: Callable[[], str]) -> None:
    task_id = svc.script("succeeds")
    svc.monkeypatch.setitem(svc.simulator.state.api_keys, svc.key, "rotated-key")
    texts = _deferred_run(svc, task_id)
    assert any("auth" in text for text in texts)
    assert svc.secret not in "\n".join([*texts, logs()])


def test_rendered_templates_hold_no_secret(svc: Svc) -> None:
    task_id = svc.script("succeeds")
    sensor = svc.sensor("{{ params.remote }}", deferrable=True)
    sensor.render_template_fields({"params": {"remote": task_id}})
    rendered = {name: getattr(sensor, name) for name in sensor.template_fields}
    assert rendered["remote_task_id"] == task_id
    assert svc.secret not in json.dumps(rendered, default=str)
