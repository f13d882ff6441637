"""The "Add Connection" form as Airflow's UI receives it, rendered by Airflow's own API code.

``HookMetaService.hook_meta_data`` is what ``GET /ui/connections/hook_meta`` returns. The UI shows each
extra field's ``value`` in the field and writes ``{name: value}`` of every field into the Extra JSON, so
a ``null`` value shows up as ``"name": null`` there (and as "null" in a select whose enum holds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

from airflow_provider_avatar.connection_form import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_SCHEME,
)
from airflow_provider_avatar.hooks.base import AvatarBaseHook, HookConfig
from airflow_provider_avatar.hooks.dreamface import DreamFaceHook
from airflow_provider_avatar.hooks.minimax import MiniMaxVideoHook
from airflow_provider_avatar.hooks.scenext import ScenextHook
from airflow_provider_avatar.hooks.trtc import TrtcHook
from airflow_provider_avatar.hooks.zego import ZegoDigitalHumanHook
from airflow_provider_avatar.services import SERVICES

COMMON_DEFAULTS: dict[str, Any] = {
    "allow_private_hosts": False,
    "read_timeout": DEFAULT_READ_TIMEOUT,
    "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
    "max_attempts": DEFAULT_MAX_ATTEMPTS,
    "scheme": DEFAULT_SCHEME,
}
COMMON_LABELS = {
    "allow_private_hosts": "Allow private download hosts",
    "read_timeout": "Read timeout (s)",
    "connect_timeout": "Connect timeout (s)",
    "max_attempts": "Attempts per call",
    "scheme": "Scheme",
}


@dataclass(frozen=True)
class Form:
    conn_type: str
    hook: type[AvatarBaseHook]
    hook_name: str
    hidden: frozenset[str]
    titles: Mapping[str, str]
    placeholders: Mapping[str, str]
    defaults: Mapping[str, Any]
    labels: Mapping[str, str]
    #: Fields the UI must mark as required (their type excludes null); every other one may be cleared.
    required: frozenset[str] = frozenset()
    #: Secret fields start unset (null): Airflow's API shows any value of a secret-named field as "***",
    #: which the form would then save as the secret.
    secrets: frozenset[str] = frozenset()
    #: What a user must type into the required fields before saving.
    filled: Mapping[str, str] = field(default_factory=dict)
    #: The host a user must enter (services without a public API host).
    host: str | None = None


FORMS = [
    Form(
        conn_type="scenext",
        hook=ScenextHook,
        hook_name="Scenext",
        hidden=frozenset({"login", "port", "url_schema"}),
        titles={"host": "API base URL", "password": "API Key"},
        placeholders={"host": SERVICES["scenext"].default_base_url, "password": "your Scenext API key"},
        # No documented rate limit: no max_qps field (an empty one would be saved as "max_qps": null).
        defaults=COMMON_DEFAULTS,
        labels=COMMON_LABELS,
    ),
    Form(
        conn_type="zego",
        hook=ZegoDigitalHumanHook,
        hook_name="ZEGOCLOUD Digital Human",
        hidden=frozenset({"port", "url_schema"}),
        titles={"host": "API base URL", "login": "AppId", "password": "ServerSecret"},
        placeholders={
            "host": SERVICES["zego"].default_base_url,
            "login": "numeric AppId from the ZEGO console",
            "password": "ServerSecret from the ZEGO console",
        },
        defaults={"max_qps": SERVICES["zego"].default_max_qps, **COMMON_DEFAULTS},
        labels={"max_qps": "Max requests per second", **COMMON_LABELS},
    ),
    Form(
        conn_type="trtc",
        hook=TrtcHook,
        hook_name="Tencent Cloud TRTC",
        hidden=frozenset({"port", "url_schema"}),
        titles={"host": "API endpoint", "login": "SecretId", "password": "SecretKey"},
        placeholders={
            "host": SERVICES["trtc"].default_base_url,
            "login": "SecretId (AKID...) of a CAM API key",
            "password": "SecretKey of that API key",
        },
        defaults={
            "max_qps": SERVICES["trtc"].default_max_qps,
            **COMMON_DEFAULTS,
            "region": "",
            "sdk_app_id": "",
            "sdk_secret_key": None,
            "session_token": None,
            "language": "en-US",
        },
        labels={
            "max_qps": "Max requests per second",
            **COMMON_LABELS,
            "region": "Region",
            "sdk_app_id": "SDKAppID",
            "sdk_secret_key": "SDK secret key",
            "session_token": "Session token",
            "language": "Error message language",
        },
        required=frozenset({"region", "sdk_app_id"}),
        secrets=frozenset({"sdk_secret_key", "session_token"}),
        filled={"region": "ap-singapore", "sdk_app_id": "1400000001"},
    ),
    Form(
        conn_type="minimax",
        hook=MiniMaxVideoHook,
        hook_name="MiniMax Hailuo video",
        hidden=frozenset({"login", "port", "url_schema"}),
        titles={"host": "API base URL", "password": "API Key"},
        placeholders={"host": SERVICES["minimax"].default_base_url, "password": "your MiniMax (or gateway) API key"},
        # No documented read rate: no max_qps field; creates have their own per-minute budget.
        defaults={**COMMON_DEFAULTS, "flavor": "auto", "group_id": "", "action_max_qps": ""},
        labels={
            **COMMON_LABELS,
            "flavor": "Flavor",
            "group_id": "GroupId",
            "action_max_qps": "Per-action rate limits",
        },
    ),
    Form(
        conn_type="dreamface",
        hook=DreamFaceHook,
        hook_name="DreamFace (new-api gateway)",
        hidden=frozenset({"login", "port", "url_schema"}),
        titles={"host": "Gateway base URL", "password": "API Key"},
        placeholders={"host": "https://your-gateway.example.com", "password": "API key of your new-api gateway"},
        # No published rate limit: max_qps goes in the extra JSON when wanted.
        defaults={**COMMON_DEFAULTS, "create_path": ""},
        labels={**COMMON_LABELS, "create_path": "Create path"},
        host="https://gateway.test",
    ),
]


@pytest.fixture(scope="module")
def hook_meta() -> dict[str, dict[str, Any]]:
    """Connection type → its form metadata, serialized as the API serves it."""
    return {
        meta.connection_type: meta.model_dump(mode="json")
        for meta in HookMetaService.hook_meta_data()
        if meta.connection_type
    }


def prefilled_extra(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The Extra JSON the UI builds for a new connection whose fields are left as shown."""
    return {name: spec["value"] for name, spec in meta["extra_fields"].items()}


def config(form: Form, extra: Mapping[str, Any]) -> HookConfig:
    return form.hook("any").build_config(form.host, None, None, "1234567890", "key", extra)


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.conn_type)
def test_standard_fields(hook_meta: dict[str, dict[str, Any]], form: Form) -> None:
    meta = hook_meta[form.conn_type]
    assert meta["hook_name"] == form.hook_name
    assert meta["hook_class_name"] == f"{form.hook.__module__}.{form.hook.__qualname__}"
    standard = {name: spec for name, spec in meta["standard_fields"].items() if spec}
    assert {name for name, spec in standard.items() if spec["hidden"]} == form.hidden
    assert {name: spec["title"] for name, spec in standard.items() if spec["title"]} == form.titles
    assert {name: spec["placeholder"] for name, spec in standard.items() if spec["placeholder"]} == form.placeholders


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.conn_type)
def test_extra_fields_show_their_defaults_and_never_null(hook_meta: dict[str, dict[str, Any]], form: Form) -> None:
    fields = hook_meta[form.conn_type]["extra_fields"]
    assert {name: spec["schema"]["title"] for name, spec in fields.items()} == form.labels
    assert prefilled_extra(hook_meta[form.conn_type]) == form.defaults
    for name, spec in fields.items():
        if name in form.secrets:
            assert spec["value"] is None and spec["schema"]["format"] == "password", name
            continue
        assert spec["value"] not in (None, "null"), name
        assert spec["description"], name
        assert None not in spec["schema"].get("enum", []), f"{name}: the UI would offer (and show) 'null'"
        # a cleared field must stay valid: the UI marks fields whose type excludes null as required
        assert ("null" not in spec["schema"]["type"]) == (name in form.required), name


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.conn_type)
def test_the_form_shows_what_the_hook_does(hook_meta: dict[str, dict[str, Any]], form: Form) -> None:
    """Saved untouched, cleared (null) or absent: the hook runs with the same settings."""
    untouched = {**prefilled_extra(hook_meta[form.conn_type]), **form.filled}
    cleared = {**dict.fromkeys(untouched), **form.filled}
    settings = [config(form, extra) for extra in (untouched, cleared, dict(form.filled))]
    assert [
        (c.max_qps, c.connect_timeout, c.read_timeout, c.max_attempts, c.allow_private_hosts) for c in settings
    ] == [
        (
            SERVICES[form.conn_type].default_max_qps,
            DEFAULT_CONNECT_TIMEOUT,
            DEFAULT_READ_TIMEOUT,
            DEFAULT_MAX_ATTEMPTS,
            False,
        )
    ] * 3


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        # what the form's widgets save: JSON numbers, booleans and the chosen enum string
        (
            {"max_qps": 2.5, "read_timeout": 30, "connect_timeout": 5, "max_attempts": 2, "allow_private_hosts": True},
            {
                "max_qps": 2.5,
                "read_timeout": 30.0,
                "connect_timeout": 5.0,
                "max_attempts": 2,
                "allow_private_hosts": True,
            },
        ),
        # the same typed into the Extra JSON as strings
        (
            {"max_qps": "2.5", "read_timeout": "30", "max_attempts": "2", "allow_private_hosts": "true"},
            {"max_qps": 2.5, "read_timeout": 30.0, "max_attempts": 2, "allow_private_hosts": True},
        ),
        ({"allow_private_hosts": False}, {"allow_private_hosts": False}),
        ({"allow_private_hosts": "false"}, {"allow_private_hosts": False}),
    ],
)
def test_values_the_form_saves_are_read(saved: dict[str, Any], expected: dict[str, Any]) -> None:
    settings = config(FORMS[1], saved)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(("scheme", "url"), [("http", "http://api.test/v1"), ("https", "https://api.test/v1")])
def test_scheme_applies_to_a_bare_host(scheme: str, url: str) -> None:
    settings = ScenextHook("any").build_config("api.test", None, "v1", None, "key", {"scheme": scheme})
    assert settings.base_url == url
