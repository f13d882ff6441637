"""Check 2: auth and permanent errors end a wait or a call after exactly one request, naming the
service, action, code and request id, never the secret."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from airflow_provider_avatar.exceptions import AvatarAuthError, AvatarError
from airflow_provider_avatar.testing.simulator import NEVER_ISSUED_ID
from tests.reliability.conftest import Svc, collect_events

pytestmark = pytest.mark.check(2)


def _reject_the_key(svc: Svc) -> None:
    """The service no longer accepts the connection's key (rotated, revoked)."""
    svc.monkeypatch.setitem(svc.simulator.state.api_keys, svc.key, "a-key-the-connection-does-not-hold")


def _names_its_context(svc: Svc, error: AvatarError | dict[str, object], text: str) -> None:
    fields = error.to_dict() if isinstance(error, AvatarError) else error
    assert fields["service"] == svc.key and fields["action"]
    assert fields["code"] is not None or fields["http_status"] is not None, fields
    if svc.sim.request_ids:
        assert fields["request_id"], fields
        assert str(fields["request_id"]) in text
    assert svc.key in text and str(fields["action"]) in text


async def test_a_rejected_key_ends_the_wait_at_the_first_answer(svc: Svc, logs: Callable[[], str]) -> None:
    task_id = svc.script("long_running")
    _reject_the_key(svc)
    (event,) = await collect_events(svc.trigger(task_id))
    assert len(svc.requests()) == 1
    assert (event["status"], event["reason"]) == ("error", "auth")
    _names_its_context(svc, event["error"], event["message"] + json.dumps(event["error"]))
    assert svc.secret not in json.dumps(event) and svc.secret not in logs()


@pytest.mark.parametrize("call", ["status", "create"])
def test_a_rejected_key_fails_a_worker_call_after_one_request(svc: Svc, call: str, logs: Callable[[], str]) -> None:
    _reject_the_key(svc)
    hook = svc.hook()
    with pytest.raises(AvatarAuthError) as info:
        if call == "status":
            hook.get_status(NEVER_ISSUED_ID)
        else:
            method, kwargs = svc.sim.create_call()
            getattr(hook, method)(**kwargs)
    assert len(svc.requests()) == 1
    _names_its_context(svc, info.value, str(info.value))
    assert svc.secret not in str(info.value) and svc.secret not in logs()


def test_a_create_the_service_refuses_fails_after_one_request(svc: Svc, logs: Callable[[], str]) -> None:
    """A permanent refusal (an invalid parameter only the service can judge) is not retried."""
    svc.sim.refuse_next_create()
    method, kwargs = svc.sim.create_call()
    with pytest.raises(AvatarError) as info:
        getattr(svc.hook(), method)(**kwargs)
    assert not info.value.transient and info.value.reason == "invalid_request", info.value
    assert len(svc.requests()) == 1
    _names_its_context(svc, info.value, str(info.value))
    assert svc.secret not in str(info.value) and svc.secret not in logs()
