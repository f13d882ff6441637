"""Check 12: triggers are small and serializable: JSON primitives, a round trip through the class
path, and no secret (Airflow stores trigger kwargs in plain text)."""

from __future__ import annotations

import importlib
import json

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from tests.reliability.conftest import Svc

pytestmark = pytest.mark.check(12)


def test_the_deferred_trigger_round_trips_without_secrets(svc: Svc) -> None:
    sensor = svc.sensor(svc.script("long_running"), timeout=600, not_found_grace=3600, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    classpath, kwargs = info.value.trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    assert all(isinstance(v, str | int | float | bool | list | type(None)) for v in kwargs.values())
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    text = json.dumps(kwargs)
    assert svc.secret not in text and "Signature" not in text
    assert len(text) < 1000, "trigger kwargs should stay small"
