"""ScenextHook through requests-mock: exact requests, retries, and error text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import requests
import requests_mock as rm
from airflow.providers.common.compat.sdk import AirflowFailException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarInputError,
    AvatarRateLimitedError,
    AvatarSubmitUnknownError,
)
from airflow_provider_avatar.hooks.scenext import ScenextHook
from airflow_provider_avatar.services import SERVICES
from airflow_provider_avatar.status import TaskState
from tests.conftest import SENTINEL_KEY
from tests.fixtures import payload

BASE = "https://scenext.test/api"


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SCENEXT_DEFAULT",
        json.dumps({"conn_type": "scenext", "host": BASE, "password": SENTINEL_KEY, "extra": {"max_attempts": 3}}),
    )


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    """Record (and skip) every backoff sleep."""
    slept: list[float] = []
    with mock.patch("tenacity.nap.time.sleep", side_effect=slept.append):
        yield slept


def test_create_sends_body_and_bearer(conn: None, requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{BASE}/gen_video", json=payload("scenext", "create_ok"))
    assert ScenextHook().create_video(question="Why?", quality="l") == "12345"
    sent = requests_mock.last_request
    assert sent.json() == {"question": "Why?", "quality": "l"}
    assert sent.headers["Authorization"] == f"Bearer {SENTINEL_KEY}"
    assert sent.timeout == (10.0, 60.0)


def test_bad_input_sends_nothing(conn: None, requests_mock: rm.Mocker) -> None:
    with pytest.raises(AvatarInputError, match="quality"):
        ScenextHook().create_video(question="q", quality="ultra")
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 502, "text": "bad gateway"},
        {"exc": requests.exceptions.ReadTimeout},
        {"status_code": 200, "text": "<html>maintenance</html>"},
    ],
)
def test_create_with_unknown_outcome_is_never_repeated(
    conn: None, requests_mock: rm.Mocker, sleeps: list[float], answer: dict[str, object]
) -> None:
    """Not by the transport, and not by an Airflow task retry (AirflowFailException)."""
    requests_mock.post(f"{BASE}/gen_video", **answer)
    with pytest.raises(AvatarSubmitUnknownError) as info:
        ScenextHook().create_video(question="q")
    assert requests_mock.call_count == 1
    assert isinstance(info.value, AirflowFailException)
    assert "check the service before re-running" in str(info.value)


def test_create_is_retried_when_it_never_arrived(conn: None, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    refused = requests.exceptions.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    requests_mock.post(f"{BASE}/gen_video", [{"exc": refused}, {"json": payload("scenext", "create_ok")}])
    assert ScenextHook().create_video(question="q") == "12345"
    assert requests_mock.call_count == 2


def test_a_429_pause_holds_back_every_caller_of_the_connection(
    conn: None, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.get(
        f"{BASE}/get_status/1",
        [
            {"status_code": 429, "headers": {"Retry-After": "5"}, "json": {}},
            {"json": payload("scenext", "documented_in_progress")},
        ],
    )
    requests_mock.get(f"{BASE}/get_status/2", json=payload("scenext", "documented_in_progress"))
    first, other = ScenextHook(), ScenextHook()
    with mock.patch("airflow_provider_avatar.transport.policy.RetryPolicy.backoff", return_value=0.0):
        first.get_status("1")  # 429, waits out the pause, succeeds
        sleeps.clear()
        other.get_status("2")  # another task of the same connection: the pause is shared
    assert requests_mock.call_count == 3
    assert max(sleeps, default=0) >= 4.5  # it waited for the rest of the 5 s pause


def test_a_retry_after_beyond_the_cap_fails_fast(conn: None, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    requests_mock.get(f"{BASE}/get_status/1", status_code=429, headers={"Retry-After": "3600"}, json={})
    with pytest.raises(AvatarRateLimitedError) as info:
        ScenextHook().get_status("1")
    assert requests_mock.call_count == 1 and sum(sleeps) == 0
    assert info.value.retry_after == 3600
    with pytest.raises(AvatarRateLimitedError, match="rate limited for another"):
        ScenextHook().get_status("1")  # the paused connection refuses at once, sending nothing
    assert requests_mock.call_count == 1 and sum(sleeps) == 0


def test_create_is_retried_after_429(conn: None, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    requests_mock.post(
        f"{BASE}/gen_video",
        [
            {"status_code": 429, "headers": {"Retry-After": "3"}, "json": {}},
            {"json": payload("scenext", "create_ok")},
        ],
    )
    assert ScenextHook().create_video(question="q") == "12345"
    assert requests_mock.call_count == 2
    assert sum(sleeps) >= 3  # Retry-After honoured (limiter pause or backoff)


def test_status_retries_transient_errors(conn: None, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    requests_mock.get(
        f"{BASE}/get_status/12345",
        [
            {"status_code": 503, "text": "busy"},
            {"status_code": 502, "text": "<html>bad gateway</html>"},
            {"json": payload("scenext", "completed_dict")},
        ],
    )
    status = ScenextHook().get_status("12345")
    assert status.state is TaskState.SUCCEEDED
    assert requests_mock.call_count == 3 and len(sleeps) == 2


def test_status_gives_up_after_max_attempts(conn: None, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    requests_mock.get(f"{BASE}/get_status/12345", status_code=429, headers={"Retry-After": "1"}, json={})
    with pytest.raises(AvatarRateLimitedError):
        ScenextHook().get_status("12345")
    assert requests_mock.call_count == 3


def test_auth_error_fails_at_first_answer_without_the_key(conn: None, requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        f"{BASE}/get_status/12345",
        status_code=401,
        json=payload("scenext", "unauthorized"),
        headers={"X-Request-Id": "req-9"},
    )
    with pytest.raises(AvatarAuthError) as info:
        ScenextHook().get_status("12345")
    assert requests_mock.call_count == 1
    text = str(info.value)
    for part in (
        "service=scenext",
        "action=get_status",
        "remote_task_id=12345",
        "http_status=401",
        "request_id=req-9",
        "Invalid API key",
    ):
        assert part in text
    assert SENTINEL_KEY not in text and SENTINEL_KEY not in repr(info.value.__dict__)


def test_connection_without_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SCENEXT_DEFAULT", json.dumps({"conn_type": "scenext", "host": BASE}))
    with pytest.raises(AvatarInputError, match="'scenext_default' has no API Key in its password field"):
        ScenextHook().get_status("1")


@pytest.mark.parametrize(
    ("conn", "base_url"),
    [
        ({"host": "https://a.test/api/"}, "https://a.test/api"),
        ({"host": "a.test", "port": 8443, "schema": "api"}, "https://a.test:8443/api"),
        ({"host": "a.test", "extra": {"scheme": "http"}}, "http://a.test"),
        ({}, SERVICES["scenext"].default_base_url),
    ],
)
def test_base_url_from_connection(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object], base_url: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SCENEXT_DEFAULT", json.dumps({"conn_type": "scenext", "password": SENTINEL_KEY, **conn})
    )
    config = ScenextHook().config
    assert config.base_url == base_url
    assert SENTINEL_KEY not in repr(config)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_qps": "fast"}, "'max_qps' must be a number"),
        ({"max_attempts": 0.5}, "'max_attempts' must be a whole number"),
        ({"max_attempts": "2.5"}, "'max_attempts' must be a whole number"),
        ({"max_attempts": 0}, "'max_attempts' must be positive"),
    ],
)
def test_bad_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SCENEXT_DEFAULT", json.dumps({"conn_type": "scenext", "password": "k", "extra": extra})
    )
    with pytest.raises(AvatarInputError, match=message):
        _ = ScenextHook().config


@pytest.mark.parametrize(
    ("status_code", "body", "ok"),
    [
        (404, payload("scenext", "error_envelope"), True),
        (200, payload("scenext", "error_envelope"), True),
        (401, payload("scenext", "unauthorized"), False),
        (503, {}, False),
    ],
)
def test_test_connection(conn: None, requests_mock: rm.Mocker, status_code: int, body: object, ok: bool) -> None:
    requests_mock.get(f"{BASE}/get_status/connection-test", status_code=status_code, json=body)
    result, message = ScenextHook().test_connection()
    assert result is ok
    assert SENTINEL_KEY not in message


def test_connection_is_read_once(conn: None, requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/get_status/1", json=payload("scenext", "documented_in_progress"))
    hook = ScenextHook()
    with mock.patch.object(ScenextHook, "get_connection", wraps=hook.get_connection) as get:
        hook.get_status("1")
        hook.get_status("1")
    assert get.call_count == 1
