"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

A malformed dict breaks ``import airflow`` for the whole environment, so a test validates it
against Airflow's own ``provider_info.schema.json``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_avatar.connection_form import connection_fields
from airflow_provider_avatar.protocols.defaults import SCENEXT_BASE_URL, SCENEXT_MAX_QPS, ZEGO_BASE_URL, ZEGO_MAX_QPS


def _bearer_connection(
    conn_type: str, hook: str, name: str, base_url: str, default_max_qps: float | None
) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": name,
        "ui-field-behaviour": {
            "hidden-fields": ["login", "port", "schema"],
            "relabeling": {"host": "API base URL", "password": "API Key"},
            "placeholders": {
                "host": base_url,
                "password": "your API key",
                "extra": '{"max_qps": 5}',
            },
        },
        "conn-fields": connection_fields(default_max_qps),
    }


def _zego_connection() -> dict[str, Any]:
    """AppId in login and ServerSecret in password: every request is signed with both."""
    return {
        "connection-type": "zego",
        "hook-class-name": "airflow_provider_avatar.hooks.zego.ZegoDigitalHumanHook",
        "hook-name": "ZEGOCLOUD Digital Human",
        "ui-field-behaviour": {
            "hidden-fields": ["port", "schema"],
            "relabeling": {"host": "API base URL", "login": "AppId", "password": "ServerSecret"},
            "placeholders": {
                "host": ZEGO_BASE_URL,
                "login": "numeric AppId from the ZEGO console",
                "password": "ServerSecret from the ZEGO console",
                "extra": '{"max_qps": 10}',
            },
        },
        "conn-fields": connection_fields(ZEGO_MAX_QPS),
    }


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_avatar import __version__

    return {
        "package-name": "airflow-provider-avatar",
        "name": "Avatar",
        "description": "Drive AI avatar, video-generation and live-stream services from Airflow: "
        "create remote tasks, wait for them with deferrable sensors, download the videos.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Avatar tasks",
                "external-doc-url": "https://pypi.org/project/airflow-provider-avatar/",
                "tags": ["software"],
            },
            {
                "integration-name": "Scenext",
                "external-doc-url": "https://docs.scenext.cn/en/api-reference/generate-video",
                "tags": ["service"],
            },
            {
                "integration-name": "ZEGOCLOUD Digital Human",
                "external-doc-url": "https://www.zegocloud.com/docs/aigc-digital-human-server/streaming-apis/apis-overview",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.hooks.scenext"]},
            {"integration-name": "ZEGOCLOUD Digital Human", "python-modules": ["airflow_provider_avatar.hooks.zego"]},
        ],
        "operators": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.operators.download"]},
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.operators.scenext"]},
            {
                "integration-name": "ZEGOCLOUD Digital Human",
                "python-modules": ["airflow_provider_avatar.operators.zego"],
            },
        ],
        "sensors": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.sensors.base"]},
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.sensors.scenext"]},
            {"integration-name": "ZEGOCLOUD Digital Human", "python-modules": ["airflow_provider_avatar.sensors.zego"]},
        ],
        "triggers": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.triggers.task_status"]},
        ],
        "connection-types": [
            _bearer_connection(
                "scenext",
                "airflow_provider_avatar.hooks.scenext.ScenextHook",
                "Scenext",
                SCENEXT_BASE_URL,
                SCENEXT_MAX_QPS,
            ),
            _zego_connection(),
        ],
    }
