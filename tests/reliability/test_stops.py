"""Check 9: nothing paid is left running. Stops are idempotent ("already stopped" and "not found"
count as success), the stop operator works as a teardown, and streams start with a bounded lifetime."""

from __future__ import annotations

import importlib
import inspect

import pytest
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.testing.simulator import NEVER_ISSUED_ID
from tests.reliability.conftest import Svc

pytestmark = pytest.mark.check(9)
SUCCESS = {"stopped", "already_stopped", "not_found"}


def _stop_operator(svc: Svc) -> type[BaseOperator]:
    """The operator in ``operators/<key>.py`` that calls the hook's stop method."""
    module = importlib.import_module(svc.row.module("operators"))
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseOperator)
        and cls.__module__ == module.__name__
        and f".{svc.sim.stop_method}(" in inspect.getsource(cls.execute)
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_stop_is_idempotent(svc: Svc) -> None:
    svc.skip_unless("check-9")
    task_id = svc.script("succeeds", duration=0.0)
    svc.clock.advance(0.1)
    stop = getattr(svc.hook(), str(svc.sim.stop_method))
    assert stop(task_id) == "stopped"
    assert stop(task_id) in SUCCESS - {"stopped"}  # a retried or repeated teardown
    svc.clock.advance(3600)  # the ended task is gone from the API
    assert stop(task_id) in SUCCESS - {"stopped"}
    assert stop(NEVER_ISSUED_ID) in SUCCESS - {"stopped"}


def test_the_stop_operator_is_a_teardown_that_runs_after_failures(svc: Svc) -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.task.trigger_rule import TriggerRule

    svc.skip_unless("check-9")
    operator = _stop_operator(svc)
    task_id = svc.script("succeeds", duration=0.0)
    with DAG("stop_teardown"):
        create = EmptyOperator(task_id="create")
        stop = operator(task_id="stop", remote_task_id=task_id).as_teardown(setups=create)
    assert stop.is_teardown and stop.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    first, again = stop.execute({}), stop.execute({})  # a cleared and re-run teardown
    assert first["outcome"] == "stopped" and again["outcome"] in SUCCESS


def test_a_stream_is_created_with_a_bounded_lifetime(svc: Svc) -> None:
    svc.skip_unless("check-9")
    method, kwargs = svc.sim.create_call()
    task_id = getattr(svc.hook(), method)(**kwargs)
    lifetime = svc.sim.bounded_lifetime(task_id)
    assert lifetime is not None and lifetime <= 24 * 3600, lifetime
