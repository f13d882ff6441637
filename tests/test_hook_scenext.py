"""ScenextHook through requests-mock: exact requests, retries, and error text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_avatar.exceptions import (
    AvatarAuthError,
    AvatarInputError,
    AvatarRateLimitedError,
    AvatarTransientError,
)
from airflow_provider_avatar.hooks.scenext import ScenextHook
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


def test_create_is_not_retried_after_it_may_have_arrived(
    conn: None, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(f"{BASE}/gen_video", status_code=502, text="bad gateway")
    with pytest.raises(AvatarTransientError):
        ScenextHook().create_video(question="q")
    assert requests_mock.call_count == 1


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
    with pytest.raises(AvatarInputError, match="'scenext_default' has no API key in its password field"):
        ScenextHook().get_status("1")


@pytest.mark.parametrize(
    ("conn", "base_url"),
    [
        ({"host": "https://a.test/api/"}, "https://a.test/api"),
        ({"host": "a.test", "port": 8443, "schema": "api"}, "https://a.test:8443/api"),
        ({"host": "a.test", "extra": {"scheme": "http"}}, "http://a.test"),
        ({}, "https://api.scenext.cn/api"),
    ],
)
def test_base_url_from_connection(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object], base_url: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SCENEXT_DEFAULT", json.dumps({"conn_type": "scenext", "password": "k", **conn}))
    config = ScenextHook().config
    assert config.base_url == base_url
    assert "k" not in repr(config).replace("max_qps", "").replace("ok", "")


def test_bad_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SCENEXT_DEFAULT",
        json.dumps({"conn_type": "scenext", "password": "k", "extra": {"max_qps": "fast"}}),
    )
    with pytest.raises(AvatarInputError, match="'max_qps' must be a number"):
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
    requests_mock.get(f"{BASE}/get_status/1", json=payload("scenext", "seed_in_progress"))
    hook = ScenextHook()
    with mock.patch.object(ScenextHook, "get_connection", wraps=hook.get_connection) as get:
        hook.get_status("1")
        hook.get_status("1")
    assert get.call_count == 1
